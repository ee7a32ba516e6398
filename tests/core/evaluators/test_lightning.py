"""The Lightning evaluators: Classification and Regression train one model and report through nascore."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from nascore.engine import TrialStatus
from nascore.errors import EvaluatorError
from nascore.format import ExecutableModel
from nascore.plugin import get_plugins
from nascore.trial import run_trial


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)  # one torch thread: the root conftest


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=200)
    return train, val


class Built(ExecutableModel):
    """An executable model that is a given module."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__({})
        self.module = module

    def build(self) -> nn.Module:
        return self.module


def evaluate(evaluator, module):
    events = []
    ok = run_trial(1, Built(module), evaluator, events.append)
    return ok, events


def mlp():
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def test_classification_reports_every_epoch_and_the_last_validation_accuracy(digits, tmp_path, monkeypatch):
    from nascore.evaluators import Classification

    monkeypatch.chdir(tmp_path)
    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], num_classes=10,
                               learning_rate=3e-3, optimizer=torch.optim.Adam, max_epochs=3)
    ok, events = evaluate(evaluator, mlp())
    assert ok
    intermediate = [e.metric for e in events if e.kind == "intermediate"]
    final = [e.metric for e in events if e.kind == "final"]
    assert len(intermediate) == 3
    assert final == [intermediate[-1]]
    assert set(final[0]) == {"default", "val_acc", "val_loss"}
    assert final[0]["default"] == final[0]["val_acc"] > 0.85
    assert intermediate[0]["val_loss"] > intermediate[-1]["val_loss"]
    assert list(tmp_path.iterdir()) == []  # no lightning_logs/ or checkpoints unless asked for


def test_regression_reports_validation_mse(tmp_path):
    from nascore.evaluators import Regression

    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = x @ torch.randn(8, 1) + 0.05 * torch.randn(512, 1)
    train = DataLoader(TensorDataset(x[:400], y[:400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[400:], y[400:]), batch_size=112)
    evaluator = Regression(train_dataloaders=train, val_dataloaders=val, learning_rate=0.1, max_epochs=5)
    assert evaluator.metric_name == "val_mse" and evaluator.metric_mode == "minimize"
    ok, events = evaluate(evaluator, nn.Linear(8, 1))
    assert ok
    mse = [e.metric["val_mse"] for e in events if e.kind == "intermediate"]
    assert mse[-1] < mse[0] and mse[-1] < 0.1
    assert [e.value for e in events if e.kind == "final"] == [mse[-1]]


def test_a_wrong_number_of_classes_fails_the_trial_with_the_fix(digits):
    from nascore.evaluators import Classification

    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], num_classes=10, max_epochs=1)
    ok, events = evaluate(evaluator, nn.Linear(64, 7))
    assert not ok
    assert events[-1].status is TrialStatus.FAILED
    assert "outputs 7 values per sample but the evaluator was given num_classes=10" in events[-1].error


def test_both_dataloaders_are_required(digits):
    from nascore.evaluators import Classification

    with pytest.raises(EvaluatorError, match="needs both train_dataloaders and val_dataloaders"):
        Classification(train_dataloaders=digits[0], max_epochs=1)


def test_a_custom_recipe_is_scored_by_its_only_metric_or_must_name_one(digits):
    from nascore.evaluators import Lightning, LightningModule

    class Recipe(LightningModule):
        def __init__(self, log_two: bool) -> None:
            super().__init__()
            self.log_two = log_two

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            self.log("val_error", (logits.argmax(-1) != y).float().mean(), batch_size=len(y))
            if self.log_two:
                self.log("val_nll", nn.functional.cross_entropy(logits, y), batch_size=len(y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    ok, events = evaluate(Lightning(Recipe(False), digits[0], digits[1], max_epochs=1), mlp())
    assert ok and events[-2].kind == "final" and 0 <= events[-2].value < 1
    ok, events = evaluate(Lightning(Recipe(True), digits[0], digits[1], max_epochs=1), mlp())
    assert not ok and "set metric_name on the LightningModule" in events[-1].error


def test_user_callbacks_are_copied_for_every_evaluation(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification

    class Count(pl.Callback):
        def __init__(self):
            self.epochs = 0

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs += 1

    counter = Count()
    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1,
                               limit_train_batches=2, callbacks=[counter])
    for _ in range(2):
        trainer = evaluator.create_trainer()
        assert [type(c) for c in trainer.callbacks if isinstance(c, Count)] == [Count]
        assert all(c is not counter for c in trainer.callbacks)
    assert evaluate(evaluator, mlp())[0]
    assert counter.epochs == 0


def test_trainers_profile_nothing_cheaply_unless_a_profiler_is_given(digits):
    from pytorch_lightning.profilers import PassThroughProfiler, SimpleProfiler

    from nascore.evaluators import Classification

    default = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1).create_trainer()
    profiler = default.profiler
    assert isinstance(profiler, PassThroughProfiler)  # records nothing, as Lightning's default
    assert type(profiler).profile is not PassThroughProfiler.profile
    with profiler.profile("outer"), profiler.profile("inner"):  # nested, as the Trainer nests hook calls
        pass
    assert profiler.summary() == ""

    for given in ("simple", SimpleProfiler()):
        evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1, profiler=given)
        assert isinstance(evaluator.create_trainer().profiler, SimpleProfiler)


def test_ctrl_c_during_training_raises_keyboard_interrupt_and_restores_the_handler(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification

    class Interrupt(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGINT)
    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate_module(mlp())
    assert signal.getsignal(signal.SIGINT) is before


def test_a_system_exit_of_the_training_code_is_not_taken_for_ctrl_c(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification

    class Exit(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            raise SystemExit(3)

    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1, callbacks=[Exit()])
    with pytest.raises(SystemExit) as raised:
        evaluator.evaluate_module(mlp())
    assert raised.value.code == 3


def test_the_trainer_gets_only_the_users_callbacks_and_the_evaluators(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification

    class Mine(pl.Callback):
        pass

    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1, callbacks=[Mine()])
    extra = Mine()
    trainer = evaluator.create_trainer(callbacks=[extra])
    # Lightning calls every callback on every hook (several times a step): nascore adds none of its own.
    assert [type(c) for c in trainer.callbacks] == [Mine, Mine] and trainer.callbacks[1] is extra


def test_the_registered_evaluators_build_lightning_evaluators(digits):
    from nascore.evaluators import Classification, Regression

    evaluators = get_plugins().evaluators
    classification = evaluators.get("classification")(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1)
    regression = evaluators.get("regression")(train_dataloaders=digits[0], val_dataloaders=digits[1])
    assert isinstance(classification, Classification) and classification.trainer_kwargs == {"max_epochs": 1}
    assert isinstance(regression, Regression)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_the_core_imports_and_loads_plugins_without_importing_lightning():
    result = _python(
        """
        import sys
        import nascore.evaluators
        from nascore.plugin import get_plugins
        names = get_plugins().evaluators.names()
        assert {"classification", "regression", "functional"} <= set(names), names
        assert "pytorch_lightning" not in sys.modules and "lightning" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr


def test_without_lightning_the_error_names_the_pip_line():
    result = _python(
        """
        import sys
        sys.modules["pytorch_lightning"] = None  # as if it were not installed
        from nascore.errors import MissingDependencyError
        from nascore.plugin import get_plugins
        factory = get_plugins().evaluators.get("classification")
        for attempt in (lambda: __import__("nascore.evaluators", fromlist=["Classification"]).Classification, factory):
            try:
                attempt()
            except MissingDependencyError as exc:
                print(exc)
            else:
                raise SystemExit("no error")
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'nascore[lightning]'" in line for line in lines)


# --- the metric's direction and the checks before the first trial ---------------------------------


def _regression_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)
    return DataLoader(TensorDataset(x, y), batch_size=16)


class _Recipe:
    """A custom Lightning recipe (built lazily: Lightning is imported inside the tests)."""

    @staticmethod
    def make(**attributes):
        from nascore.evaluators import LightningModule

        class Recipe(LightningModule):
            def training_step(self, batch, batch_idx):
                return nn.functional.mse_loss(self(batch[0]), batch[1])

            def validation_step(self, batch, batch_idx):
                self.log("val_error", nn.functional.mse_loss(self(batch[0]), batch[1]), batch_size=len(batch[0]))

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        recipe = Recipe()
        for name, value in attributes.items():
            setattr(recipe, name, value)
        return recipe


def test_each_evaluator_knows_which_way_its_metric_is_better(digits):
    from nascore.evaluators import Classification, Lightning, Regression

    data = _regression_data()
    assert Regression(train_dataloaders=data, val_dataloaders=data).optimize_mode == "minimize"
    assert Classification(train_dataloaders=digits[0], val_dataloaders=digits[1]).optimize_mode == "maximize"
    unsaid = Lightning(_Recipe.make(), data, data)
    assert unsaid.optimize_mode is None and unsaid.metric_mode == "maximize"  # one-shot ranking as before
    said = Lightning(_Recipe.make(metric_name="val_error", metric_mode="minimize"), data, data)
    assert said.optimize_mode == "minimize" and said.metric_mode == "minimize"


def test_a_valid_evaluator_passes_the_check(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification, Lightning, Regression

    data = _regression_data()
    Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], num_classes=10, learning_rate=3e-3,
                   optimizer=torch.optim.SGD, weight_decay=1e-4, max_epochs=2, callbacks=[pl.Callback()]).check()
    Regression(train_dataloaders=data, val_dataloaders=[data, data], max_epochs=1, limit_val_batches=0.5,
               check_val_every_n_epoch=1).check()
    Lightning(_Recipe.make(metric_name="val_error", metric_mode="minimize"), data, data, max_steps=3).check()


def test_a_misspelled_trainer_argument_is_named_with_the_close_name(digits):
    from nascore.evaluators import Classification

    evaluator = Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epoch=1)
    with pytest.raises(EvaluatorError) as info:
        evaluator.check()
    message = str(info.value)
    assert message.startswith(
        "Classification: unknown Trainer argument 'max_epoch'; did you mean 'max_epochs'? "
        "(pytorch_lightning.Trainer accepts: accelerator, strategy, devices,"
    )
    with pytest.raises(EvaluatorError, match=r"arguments 'acelerator'; did you mean 'accelerator'\?, 'zzz' \("):
        Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], acelerator="cpu", zzz=1).check()


@pytest.mark.parametrize(
    ("trainer_kwargs", "named"),
    [
        ({"max_epochs": 0}, "max_epochs=0"),
        ({"max_steps": 0}, "max_steps=0"),
        ({"limit_val_batches": 0}, "limit_val_batches=0"),
        ({"limit_train_batches": 0.0}, "limit_train_batches=0.0"),
        ({"max_epochs": 2, "check_val_every_n_epoch": 5}, "check_val_every_n_epoch=5 with max_epochs=2"),
    ],
)
def test_trainer_settings_under_which_no_validation_runs_are_refused(trainer_kwargs, named):
    from nascore.evaluators import Regression

    data = _regression_data()
    with pytest.raises(EvaluatorError, match=rf"Regression: Trainer argument.* {named}, so no validation epoch would run"):
        Regression(train_dataloaders=data, val_dataloaders=data, **trainer_kwargs).check()


def test_callbacks_must_be_callback_instances():
    from pytorch_lightning.callbacks import EarlyStopping

    from nascore.evaluators import Regression

    data = _regression_data()
    with pytest.raises(EvaluatorError, match="'callbacks' holds the class EarlyStopping, not a pytorch_lightning.Callback instance"):
        Regression(train_dataloaders=data, val_dataloaders=data, callbacks=[EarlyStopping]).check()


@pytest.mark.parametrize(
    ("which", "data", "message"),
    [
        ("train_dataloaders", lambda d: d.dataset, r"train_dataloaders is a Dataset \(TensorDataset\), not a DataLoader; wrap it"),
        ("val_dataloaders", lambda d: iter(d), r"val_dataloaders is an iterator \(_SingleProcessDataLoaderIter\), which the first trial would use up"),
        ("val_dataloaders", lambda d: (batch for batch in d), r"val_dataloaders is an iterator \(generator\)"),
        ("train_dataloaders", lambda d: 5, r"train_dataloaders must be a torch DataLoader \(or another iterable of batches\), got int 5"),
        ("val_dataloaders", lambda d: DataLoader(d.dataset, batch_size=100, drop_last=True),
         r"val_dataloaders has no batches \(its dataset has 64 samples, batch_size=100, drop_last=True\)"),
    ],
    ids=["dataset", "iterator", "generator", "not-iterable", "empty"],
)
def test_dataloaders_no_trial_could_use_are_named(which, data, message):
    from nascore.evaluators import Regression

    loader = _regression_data()
    loaders = {"train_dataloaders": loader, "val_dataloaders": loader, which: data(loader)}
    with pytest.raises(EvaluatorError, match=rf"^Regression: {message}"):
        Regression(**loaders).check()


def test_a_datamodule_is_refused_with_how_to_pass_its_dataloaders():
    import pytorch_lightning as pl

    from nascore.evaluators import Regression

    loader = _regression_data()
    with pytest.raises(EvaluatorError, match=r"train_dataloaders is a LightningDataModule .*dm.train_dataloader\(\)"):
        Regression(train_dataloaders=pl.LightningDataModule(), val_dataloaders=loader).check()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"learning_rate": 0}, "learning_rate must be a positive number, got 0"),
        ({"learning_rate": -1e-3}, "learning_rate must be a positive number, got -0.001"),
        ({"learning_rate": "1e-3"}, "learning_rate must be a positive number, got '1e-3'"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive number, got nan"),
        ({"weight_decay": -0.1}, "weight_decay must be a number >= 0, got -0.1"),
        ({"optimizer": "adam"}, "optimizer must be a torch.optim.Optimizer subclass such as torch.optim.Adam .* got 'adam'"),
        ({"optimizer": nn.Linear}, "optimizer must be a torch.optim.Optimizer subclass .* got <class"),
        ({"num_classes": 0}, "num_classes must be a positive integer .* got 0"),
    ],
)
def test_training_settings_that_fail_every_trial_are_named(digits, arguments, message):
    from nascore.evaluators import Classification

    with pytest.raises(EvaluatorError, match=f"^Classification: {message}"):
        Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], max_epochs=1, **arguments).check()


def test_an_optimizer_instance_is_refused_for_the_class(digits):
    from nascore.evaluators import Classification

    adam = torch.optim.Adam(nn.Linear(1, 1).parameters())
    with pytest.raises(EvaluatorError, match="optimizer must be .*got an instance of Adam"):
        Classification(train_dataloaders=digits[0], val_dataloaders=digits[1], optimizer=adam).check()


def test_a_recipe_metric_mode_must_be_a_direction():
    from nascore.evaluators import Lightning

    data = _regression_data()
    evaluator = Lightning(_Recipe.make(metric_mode="min"), data, data)
    assert evaluator.optimize_mode is None
    with pytest.raises(EvaluatorError, match="Lightning: the recipe's metric_mode must be 'maximize' or 'minimize'.*got 'min'"):
        evaluator.check()


def test_the_check_works_on_an_evaluator_shipped_to_a_worker():
    """Workers rebuild evaluators from a shipment; the check needs nothing that does not travel."""
    from nascore.evaluators import Regression
    from nascore.serialization import load_shipped_evaluator, ship_evaluator

    data = _regression_data()
    good = load_shipped_evaluator(ship_evaluator(Regression(train_dataloaders=data, val_dataloaders=data, max_epochs=1)))
    good.check()
    assert good.optimize_mode == "minimize"
    bad = load_shipped_evaluator(ship_evaluator(Regression(train_dataloaders=data, val_dataloaders=data, max_epoch=1)))
    with pytest.raises(EvaluatorError, match="did you mean 'max_epochs'"):
        bad.check()


def test_the_experiment_stops_on_a_trainer_typo_before_the_first_trial(tmp_path):
    from nascore.evaluators import Regression
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore.nn import LayerChoice, ModelSpace

    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.head = LayerChoice([nn.Linear(4, 1), nn.Linear(4, 1)], label="head")

        def forward(self, x):
            return self.head(x)

    data = _regression_data()
    exp = Experiment(Space(), Regression(train_dataloaders=data, val_dataloaders=data, max_epoch=1), "grid",
                     ExperimentConfig(experiment_dir=tmp_path))
    with pytest.raises(EvaluatorError, match="unknown Trainer argument 'max_epoch'; did you mean 'max_epochs'"):
        exp.run()
    assert list(tmp_path.iterdir()) == []  # no trial ran: nothing was written
