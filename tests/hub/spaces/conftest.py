"""What the hub's space tests share: building a sample in a format, and a tiny training set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from nascore.plugin import create_format


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class FormatChecks:
    """Checks of a space (made by ``make_space``) in the formats, on 2x3x8x8 images and 10 classes."""

    def runs(self, format_name: str, make_space: Callable[[], nn.Module], sample: dict[str, Any]) -> None:
        """``sample`` builds in ``format_name`` and its forward pass gives finite logits."""
        space = create_format(format_name).build(make_space())
        assert space.contains(sample)
        module = space.freeze(sample).build()
        assert isinstance(module, nn.Module)
        module.eval()
        with torch.no_grad():
            out = module(image_batch())
        assert out.shape == (2, 10) and torch.isfinite(out).all()

    def graph_matches_simplified(self, make_space: Callable[[], nn.Module], sample: dict[str, Any]) -> None:
        """The graph format's generated model computes what the simplified format builds."""
        generated = create_format("graph").build(make_space()).freeze(sample).build()
        reference = create_format("simplified").build(make_space()).freeze(sample).build()
        generated.load_state_dict(reference.state_dict())  # strict: the same parameter names
        generated.eval()
        reference.eval()
        with torch.no_grad():
            inputs = image_batch()
            assert torch.allclose(generated(inputs), reference(inputs), atol=1e-5)


@pytest.fixture
def format_checks() -> FormatChecks:
    return FormatChecks()


@pytest.fixture
def tiny_evaluator():
    """A Classification evaluator on 8 random 3x8x8 images: one training step per epoch."""
    from nascore.evaluators import Classification

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8, generator=generator), torch.randint(0, 10, (8,), generator=generator)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    val = DataLoader(TensorDataset(x, y), batch_size=8)
    return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=1)
