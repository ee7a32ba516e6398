"""Decisions in an evaluator's arguments: mutables(), freeze(), the joined search space and the checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.errors import EvaluatorError, LabelConflictError, SampleMissingError, SampleValueError
from nascore.evaluator import Evaluator, MutableEvaluator
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment.space import (
    SearchSpace,
    check_evaluator,
    freeze_trial,
    model_sample,
    search_space,
    stored_value,
)
from nascore.serialization import load_shipped_evaluator, ship_evaluator
from nascore.space import Categorical, Numerical
from nascore.testing.fakes import DictSpace


def train(model, lr, epochs=1, extra=None):
    return lr * epochs


@pytest.fixture
def loaders():
    data = TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,)))
    return DataLoader(data, batch_size=4), DataLoader(data, batch_size=8)


# --- the contract's defaults ------------------------------------------------------------------------


class Plain(Evaluator):
    def evaluate_module(self, module):
        return 1.0


def test_an_evaluator_without_decisions_freezes_to_itself():
    evaluator = Plain()
    assert evaluator.mutables() == {} and evaluator.freeze({"anything": 1}) is evaluator
    evaluator.check_frozen()
    space = DictSpace([Categorical([1, 2], label="a")])
    assert search_space(space, evaluator) is space and search_space(space, None) is space


# --- FunctionalEvaluator ------------------------------------------------------------------------------


def test_functional_evaluator_lists_and_freezes_its_decisions():
    evaluator = FunctionalEvaluator(
        train, lr=nascore.choice("lr", [0.1, 0.01]), epochs=nascore.choice("epochs", [1, 2]) * 10,
        extra={"layers": [nascore.choice("depth", [1, 2, 3])]},
    )
    assert set(evaluator.mutables()) == {"lr", "epochs", "depth"}
    frozen = evaluator.freeze({"lr": 0.01, "epochs": 2, "depth": 3, "width": 64})  # other labels are ignored
    assert frozen.arguments == {"lr": 0.01, "epochs": 20, "extra": {"layers": [3]}}
    assert frozen.mutables() == {} and frozen.decisions == {"lr": 0.01, "epochs": 2, "depth": 3}
    assert frozen.evaluate_module(nn.Identity()) == pytest.approx(0.2)
    assert evaluator.arguments["lr"] is not frozen.arguments["lr"]  # the template is left as it was


def test_functional_evaluator_with_decisions_refuses_to_evaluate_until_frozen():
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1, 0.01]))
    with pytest.raises(EvaluatorError, match=r"holds decisions in its arguments \('lr'\).*evaluator.freeze"):
        evaluator.evaluate_module(nn.Identity())
    with pytest.raises(EvaluatorError, match="holds decisions"):
        evaluator.evaluate(DictSpace([]).freeze({}))


def test_freezing_checks_the_values():
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1, 0.01]))
    with pytest.raises(SampleValueError, match="0.5"):
        evaluator.freeze({"lr": 0.5})
    with pytest.raises(SampleMissingError, match="'lr'"):
        evaluator.freeze({})


def test_one_label_for_two_decisions_in_the_arguments_is_an_error():
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("x", [0.1, 0.01]), epochs=nascore.choice("x", [1, 2]))
    with pytest.raises(LabelConflictError, match="'x'"):
        evaluator.mutables()
    same = FunctionalEvaluator(train, lr=nascore.choice("x", [1, 2]), epochs=nascore.choice("x", [1, 2]))
    assert same.freeze({"x": 2}).arguments == {"lr": 2, "epochs": 2}


def test_a_frozen_functional_evaluator_ships_and_the_template_is_not_stored_as_data():
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1, 0.01]), nascore_optimize_mode="minimize")
    assert evaluator.to_spec() is None  # decisions are not JSON: resume needs evaluator= (as for any such evaluator)
    frozen = evaluator.freeze({"lr": 0.1})
    assert frozen.optimize_mode == "minimize"
    loaded = load_shipped_evaluator(ship_evaluator(frozen))
    assert loaded.arguments == {"lr": 0.1} and loaded.mutables() == {}


def test_check_binds_the_arguments_with_the_decisions_in_them():
    FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1, 0.01])).check()
    with pytest.raises(EvaluatorError, match="takes no argument 'learning_rate'"):
        FunctionalEvaluator(train, learning_rate=nascore.choice("lr", [0.1, 0.01])).check()


# --- MutableEvaluator ---------------------------------------------------------------------------------


class Recipe(MutableEvaluator):
    """Checks its arguments in the constructor, like an evaluator that calls or validates them."""

    def __init__(self, loss, lr=0.1, *, epochs=1):
        if not callable(loss):
            raise EvaluatorError(f"loss must be a class, got {loss!r}")
        if lr <= 0:
            raise EvaluatorError(f"lr must be positive, got {lr}")
        self.loss, self.lr, self.epochs = loss(), lr, epochs

    def evaluate_module(self, module):
        return self.lr


def test_a_mutable_evaluator_is_built_from_the_defaults_and_frozen_by_calling_its_constructor_again():
    evaluator = Recipe(nascore.choice("loss", [nn.MSELoss, nn.L1Loss]), nascore.choice("lr", [0.1, 0.5]), epochs=[nascore.choice("e", [1, 2])])
    assert isinstance(evaluator.loss, nn.MSELoss) and evaluator.lr == 0.1 and evaluator.epochs == [1]
    assert set(evaluator.mutables()) == {"loss", "lr", "e"} and evaluator.decisions is None
    args, kwargs = evaluator.init_arguments
    assert isinstance(args[0], Categorical) and isinstance(kwargs["epochs"][0], Categorical)
    with pytest.raises(EvaluatorError, match="holds decisions"):
        evaluator.evaluate(DictSpace([]).freeze({}))

    frozen = evaluator.freeze({"loss": nn.L1Loss, "lr": 0.5, "e": 2})
    assert type(frozen) is Recipe and isinstance(frozen.loss, nn.L1Loss) and frozen.lr == 0.5 and frozen.epochs == [2]
    assert frozen.mutables() == {} and frozen.init_arguments == ((nn.L1Loss, 0.5), {"epochs": [2]})
    assert frozen.decisions == {"loss": nn.L1Loss, "lr": 0.5, "e": 2}
    assert frozen.evaluate(DictSpace([]).freeze({})) == 0.5
    plain = Recipe(nn.MSELoss)
    assert plain.mutables() == {} and plain.freeze({}) is plain


def test_a_value_the_constructor_refuses_names_the_decision():
    evaluator = Recipe(nn.MSELoss, nascore.choice("lr", [0.1, -1.0]))
    with pytest.raises(EvaluatorError, match=r"Recipe with lr=-1.0: lr must be positive"):
        evaluator.freeze({"lr": -1.0})
    with pytest.raises(EvaluatorError, match=r"lr=-1.0.*lr must be positive"):
        check_evaluator(evaluator)


# --- Lightning ----------------------------------------------------------------------------------------


def test_classification_searches_its_recipe_and_trainer_arguments(loaders):
    from nascore.evaluators import Classification

    train_loader, val_loader = loaders
    evaluator = Classification(
        criterion=nascore.choice("loss", [nn.CrossEntropyLoss, nn.NLLLoss]),
        learning_rate=nascore.choice("lr", [0.1, 0.01]), weight_decay=nascore.choice("wd", [0.0, 1e-4]),
        optimizer=nascore.choice("opt", [torch.optim.Adam, torch.optim.SGD]),
        train_dataloaders=train_loader, val_dataloaders=val_loader, num_classes=2,
        max_epochs=nascore.choice("epochs", [1, 3]), gradient_clip_val=nascore.choice("clip", [None, 1.0]),
    )
    assert set(evaluator.mutables()) == {"loss", "lr", "wd", "opt", "epochs", "clip"}
    assert evaluator.optimize_mode == "maximize" and evaluator.module.learning_rate == 0.1  # built from the defaults
    assert "decisions ['clip', 'epochs', 'loss', 'lr', 'opt', 'wd']" in repr(evaluator)
    evaluator.check()
    check_evaluator(evaluator)
    with pytest.raises(EvaluatorError, match="holds decisions"):
        evaluator.evaluate_module(nn.Linear(3, 2))

    frozen = evaluator.freeze({"loss": nn.NLLLoss, "lr": 0.01, "wd": 1e-4, "opt": torch.optim.SGD, "epochs": 3, "clip": 1.0})
    assert type(frozen) is Classification and frozen.mutables() == {}
    recipe = frozen.module
    assert isinstance(recipe.criterion, nn.NLLLoss) and recipe.learning_rate == 0.01 and recipe.weight_decay == 1e-4
    assert recipe.optimizer_class is torch.optim.SGD
    assert frozen.trainer_kwargs == {"max_epochs": 3, "gradient_clip_val": 1.0}
    assert frozen.train_dataloaders is train_loader and frozen.val_dataloaders is val_loader  # never copied
    frozen.check()


def test_frozen_lightning_evaluators_merge_only_with_the_same_values(loaders):
    from nascore.evaluators import Classification

    train_loader, val_loader = loaders
    evaluator = Classification(learning_rate=nascore.choice("lr", [0.1, 0.01]), train_dataloaders=train_loader,
                               val_dataloaders=val_loader, max_epochs=nascore.choice("epochs", [1, 2]))
    a, b = evaluator.freeze({"lr": 0.1, "epochs": 1}), evaluator.freeze({"lr": 0.1, "epochs": 1})
    assert a is not b and a.merge_key() == b.merge_key() is not None
    assert a.merge_key() != evaluator.freeze({"lr": 0.01, "epochs": 1}).merge_key()
    assert a.merge_key() != evaluator.freeze({"lr": 0.1, "epochs": 2}).merge_key()


def test_lightning_recipe_attributes_and_saved_hyperparameters_hold_decisions(loaders):
    from nascore.evaluators import Lightning, LightningModule

    class Custom(LightningModule):
        def __init__(self, lr, betas):
            super().__init__()
            self.save_hyperparameters()
            self.lr = lr

    train_loader, val_loader = loaders
    recipe = Custom(nascore.choice("lr", [0.1, 0.01]), (0.9, nascore.choice("beta2", [0.99, 0.999])))
    evaluator = Lightning(recipe, train_loader, val_loader, max_epochs=1)
    assert set(evaluator.mutables()) == {"lr", "beta2"}
    assert evaluator.module.lr == 0.1 and evaluator.module.hparams["betas"] == (0.9, 0.99)  # the defaults
    frozen = evaluator.freeze({"lr": 0.01, "beta2": 0.999})
    assert frozen.module is not recipe and frozen.module.lr == 0.01
    assert frozen.module.hparams["lr"] == 0.01 and frozen.module.hparams["betas"] == (0.9, 0.999)
    assert isinstance(recipe.lr, Categorical)  # the recipe given is left as it was
    plain = Lightning(recipe := Custom(0.1, (0.9, 0.99)), train_loader, val_loader)
    assert plain.mutables() == {} and plain.module is recipe


def test_a_bad_trainer_argument_in_a_choice_is_found_before_the_first_trial(loaders):
    from nascore.evaluators import Classification

    train_loader, val_loader = loaders
    evaluator = Classification(
        train_dataloaders=train_loader, val_dataloaders=val_loader,
        optimizer=nascore.choice("opt", [torch.optim.Adam, "sgd"]),
    )
    with pytest.raises(EvaluatorError, match=r"opt='sgd'.*optimizer must be a torch.optim.Optimizer subclass"):
        check_evaluator(evaluator)
    zero = Classification(train_dataloaders=train_loader, val_dataloaders=val_loader, max_epochs=nascore.choice("e", [1, 0]))
    with pytest.raises(EvaluatorError, match=r"e=0.*max_epochs=0"):
        check_evaluator(zero)


# --- the joined space ---------------------------------------------------------------------------------


def joined():
    space = DictSpace([Categorical([2, 4], label="width"), Categorical(["relu", "tanh"], label="act")])
    evaluator = FunctionalEvaluator(
        train, lr=nascore.choice("lr", [0.1, 0.01]), epochs=nascore.choice("width", [2, 4]),
        extra=nascore.choice("opt", [torch.optim.Adam, torch.optim.SGD]),
    )
    return space, evaluator, SearchSpace(space, evaluator)


def test_the_search_space_holds_the_model_and_the_evaluator_decisions():
    space, evaluator, joint = joined()
    assert list(joint.simplify()) == ["width", "act", "lr", "opt"]  # "width" is one decision: shared
    assert joint.space is space.space and joint.model_space is space
    samples = list(joint.grid_samples())
    assert len(samples) == 2 * 2 * 2 * 2 and len({repr(sorted(s.items(), key=str)) for s in samples}) == 16
    assert joint.contains(joint.random_sample(seed=1)) and joint.contains(joint.default_sample())
    assert joint.default_sample() == {"width": 2, "act": "relu", "lr": 0.1, "opt": torch.optim.Adam}


def test_freezing_gives_the_model_and_the_trial_evaluator():
    space, evaluator, joint = joined()
    sample = {"width": 4, "act": "tanh", "lr": 0.01, "opt": torch.optim.SGD}
    model = joint.freeze(sample)
    assert model.sample == {"width": 4, "act": "tanh"}  # the model's labels only
    trial_evaluator = joint.freeze_evaluator(sample)
    assert trial_evaluator.arguments == {"lr": 0.01, "epochs": 4, "extra": torch.optim.SGD}  # shared: the same value
    assert joint.freeze_evaluator(dict(sample)) is trial_evaluator  # one evaluator per set of values
    model, trial_evaluator, recorded = freeze_trial(joint, evaluator, sample)
    assert recorded == sample and trial_evaluator.decisions == {"lr": 0.01, "width": 4, "opt": torch.optim.SGD}
    plain_model, plain_evaluator, plain_recorded = freeze_trial(space, evaluator, {"width": 2, "act": "relu"})
    assert plain_evaluator is evaluator and plain_recorded == {"width": 2, "act": "relu"}


def test_a_sample_without_the_evaluator_values_is_refused():
    _, _, joint = joined()
    with pytest.raises(SampleMissingError, match="'lr' of the evaluator's arguments"):
        joint.freeze({"width": 4, "act": "tanh", "opt": torch.optim.SGD})
    with pytest.raises(SampleValueError, match="0.5"):
        joint.freeze({"width": 4, "act": "tanh", "lr": 0.5, "opt": torch.optim.SGD})
    error = joint.check_contains({"width": 4, "act": "tanh", "lr": 0.1})
    assert isinstance(error, SampleMissingError) and "'opt'" in str(error)


def test_values_the_store_kept_as_text_map_back_to_the_candidates():
    _, _, joint = joined()
    stored = {"width": 4, "act": "tanh", "lr": 0.1, "opt": repr(torch.optim.SGD)}  # what the store writes for a class
    assert joint.contains(stored)
    assert freeze_trial(joint, joint.evaluator, stored)[2]["opt"] is torch.optim.SGD
    choice = Categorical([torch.optim.Adam, "x"], label="c")
    assert stored_value(choice, repr(torch.optim.Adam)) is torch.optim.Adam and stored_value(choice, "x") == "x"
    assert stored_value(choice, "other") == "other"


def test_a_label_with_other_candidates_in_the_evaluator_is_a_conflict():
    space = DictSpace([Categorical([2, 4], label="width")])
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("width", [2, 8]))
    with pytest.raises(LabelConflictError, match="'width' is used by the model space .* and by the evaluator's arguments"):
        SearchSpace(space, evaluator)


def test_model_sample_drops_what_the_model_space_does_not_know():
    space, _, joint = joined()
    sample = {"width": 4, "act": "tanh", "lr": 0.1, "opt": "x"}
    assert model_sample(joint, sample) == {"width": 4, "act": "tanh"}
    assert model_sample(space, sample) == {"width": 4, "act": "tanh"}


def test_numerical_decisions_in_the_evaluator():
    space = DictSpace([Categorical([2, 4], label="width")])
    evaluator = FunctionalEvaluator(train, lr=Numerical(1e-4, 1e-1, log_distributed=True, label="lr"))
    joint = SearchSpace(space, evaluator)
    sample = joint.random_sample(seed=0)
    assert 1e-4 <= sample["lr"] <= 1e-1
    assert joint.freeze_evaluator(sample).arguments == {"lr": sample["lr"]}
    check_evaluator(evaluator)


def test_arguments_without_decisions_are_passed_as_given():
    import collections

    Pair = collections.namedtuple("Pair", "a b")
    pair, callbacks = Pair(1, 2), [object()]
    evaluator = FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1, 0.01]), extra=pair, epochs=callbacks)
    frozen = evaluator.freeze({"lr": 0.1})
    assert frozen.arguments["extra"] is pair and frozen.arguments["epochs"] is callbacks
    recipe = Recipe(nn.MSELoss, nascore.choice("lr", [0.1, 0.5]), epochs=pair)
    assert recipe.epochs is pair and recipe.freeze({"lr": 0.5}).epochs is pair
