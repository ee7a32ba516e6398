"""FunctionalEvaluator: arguments checked against the function before the first trial, and a declared direction."""

from __future__ import annotations

import pytest
import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluators import FunctionalEvaluator
from nascore.serialization import build_from_spec, load_shipped_evaluator, ship_evaluator


def train(model, epochs, lr=0.1):
    return float(epochs * lr)


def train_with_options(model, **options):
    return float(len(options))


def takes_optimize_mode(model, optimize_mode="own"):
    return 1.0 if optimize_mode == "own" else 2.0


def test_valid_arguments_pass_the_check():
    FunctionalEvaluator(train, epochs=3).check()
    FunctionalEvaluator(train, epochs=3, lr=0.5).check()
    FunctionalEvaluator(train_with_options, anything=1).check()
    FunctionalEvaluator(lambda model: 1.0).check()
    FunctionalEvaluator(print).check()  # built-ins whose signature can be read or not: never a false alarm


def test_a_misspelled_argument_is_named_with_the_close_name():
    with pytest.raises(EvaluatorError) as info:
        FunctionalEvaluator(train, epoch=3).check()
    assert str(info.value).startswith(
        "FunctionalEvaluator: train() takes no argument 'epoch'; did you mean 'epochs'? (it takes: model, epochs, lr)"
    )


def test_a_missing_argument_or_a_function_without_the_model_is_named():
    with pytest.raises(EvaluatorError, match=r"train\(\) cannot be called as train\(model, \*\*kwargs\).*missing a required argument: 'epochs'"):
        FunctionalEvaluator(train).check()
    with pytest.raises(EvaluatorError, match=r"cannot be called as .*\(model, \*\*kwargs\).*too many positional arguments"):
        FunctionalEvaluator(lambda: 1.0).check()


def test_the_direction_is_unknown_unless_declared():
    assert FunctionalEvaluator(train, epochs=1).optimize_mode is None
    assert FunctionalEvaluator(train, epochs=1, nascore_optimize_mode="minimize").optimize_mode == "minimize"
    with pytest.raises(EvaluatorError, match="nascore_optimize_mode must be 'maximize', 'minimize' or None.*got 'min'"):
        FunctionalEvaluator(train, epochs=1, nascore_optimize_mode="min")


def test_the_declared_direction_does_not_take_the_functions_own_argument():
    evaluator = FunctionalEvaluator(takes_optimize_mode, optimize_mode="theirs", nascore_optimize_mode="maximize")
    evaluator.check()
    assert evaluator.arguments == {"optimize_mode": "theirs"} and evaluator.optimize_mode == "maximize"
    assert evaluator.evaluate_module(nn.Linear(1, 1)) == 2.0


def test_the_declared_direction_survives_the_spec_and_shipping():
    evaluator = FunctionalEvaluator(train, epochs=2, nascore_optimize_mode="minimize")
    rebuilt = build_from_spec(evaluator.to_spec())
    assert rebuilt.optimize_mode == "minimize" and rebuilt.arguments == {"epochs": 2}
    shipped = load_shipped_evaluator(ship_evaluator(FunctionalEvaluator(lambda model: 1.0, nascore_optimize_mode="maximize")))
    assert shipped.optimize_mode == "maximize"
    assert build_from_spec(FunctionalEvaluator(train, epochs=2).to_spec()).optimize_mode is None
