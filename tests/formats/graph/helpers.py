"""Checks shared by the graph-format tests."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import torch
import torch.nn as nn

from nascore.nn import ModelSpace
from nascore_formats import GraphFormat, GraphModel, SimplifiedFormat


def exec_code(code: str) -> nn.Module:
    """Run generated source in a fresh namespace and build the one nn.Module class it defines."""
    namespace: dict = {"__name__": "generated_model"}
    exec(compile(code, "<generated>", "exec"), namespace)
    classes = [
        v for v in namespace.values() if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == "generated_model"
    ]
    assert len(classes) == 1, "the generated module defines exactly one nn.Module"
    return classes[0]()


def assert_same_outputs(model: nn.Module, reference: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Load ``reference``'s weights into ``model`` (strictly: same keys) and compare the outputs in eval mode."""
    model.load_state_dict(reference.state_dict())
    model.eval()
    reference.eval()
    with torch.no_grad():
        expected, actual = reference(*inputs), model(*inputs)
    assert torch.allclose(actual, expected, atol=1e-5), (actual - expected).abs().max()


def check_against_simplified(
    space_factory: Callable[[], ModelSpace],
    inputs: Callable[[], tuple[torch.Tensor, ...]],
    samples: int = 8,
    twin: Callable[[], ModelSpace] | None = None,
) -> list[GraphModel]:
    """Freeze ``samples`` random samples in both formats; the generated code must match the simplified model."""
    graph_space = GraphFormat().build(space_factory())
    simplified_space = SimplifiedFormat().build((twin or space_factory)())
    rng = random.Random(0)
    models = []
    for _ in range(samples):
        sample = graph_space.random_sample(random_state=rng)
        model = graph_space.freeze(sample)
        generated = exec_code(model.to_code())
        assert_same_outputs(generated, simplified_space.freeze(sample).build(), inputs())
        json.dumps(model.to_payload())
        models.append(model)
    return models
