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
