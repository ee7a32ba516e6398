"""The model-format contract: how a model space becomes something strategies and engines use.

A :class:`ModelFormat` turns a user's model space into an :class:`ExecutableSpace`: a mutable
whose decisions strategies sample and which freezes a sample into an :class:`ExecutableModel`.
An executable model builds the ``nn.Module`` and, to cross a process boundary, turns into a
JSON-able payload that the same format loads back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import torch.nn as nn

from nascore.space import LabelledMutable, Mutable, Sample
from nascore.space.conditions import Decisions

__all__ = ["ModelFormat", "ExecutableSpace", "ExecutableModel"]


class ExecutableModel(ABC):
    """One architecture of a space, ready to build."""

    format_name: ClassVar[str] = ""

    def __init__(self, sample: Sample) -> None:
        self.sample = dict(sample)

    @abstractmethod
    def build(self) -> nn.Module:
        """A new ``nn.Module`` for this architecture."""

    def to_payload(self) -> dict[str, Any]:
        """This model as JSON-able data, loaded back by :meth:`ModelFormat.load_model`."""
        raise NotImplementedError(f"the {self.format_name or type(self).__name__} format cannot ship models")

    def to_code(self) -> str:
        """Python source defining this model (only formats that generate code)."""
        raise NotImplementedError(f"the {self.format_name or type(self).__name__} format does not generate code")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sample!r})"


class ExecutableSpace(Mutable):
    """A model space in a format: its decisions, and freezing samples into executable models."""

    def __init__(
        self, space: nn.Module, mutables: dict[str, LabelledMutable], decisions: Decisions | None = None
    ) -> None:
        """``mutables`` are the decisions strategies sample; ``decisions`` when each is active and the
        constraints (by default those of ``space``, a decision ``space`` does not have being always active)."""
        self.space = space
        self._mutables = dict(mutables)
        if decisions is None:
            source = space.decisions() if isinstance(space, Mutable) else Decisions.unconditional({})
            decisions = source.restricted(self._mutables)
        self._decisions = decisions

    def simplify(self) -> dict[str, LabelledMutable]:
        return dict(self._mutables)

    def decisions(self) -> Decisions:
        """The decisions, when each is active and the constraints (computed once, when the format built the space)."""
        return self._decisions

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from self._mutables.values()

    @abstractmethod
    def freeze(self, sample: Sample) -> ExecutableModel:
        """The executable model for ``sample`` (validated against the space)."""


class ModelFormat(ABC):
    """Base class of model formats, registered by name through ``nascore_register_formats``.

    :cvar options_class: the attrs class of this format's settings (``format_options``), or ``None``
        when it takes none; a format with one is made as ``cls(options)``.
    """

    name: ClassVar[str] = ""
    options_class: ClassVar[type | None] = None

    @abstractmethod
    def build(self, space: nn.Module) -> ExecutableSpace:
        """Turn a user's model space into an executable space."""

    def load_model(self, payload: dict[str, Any]) -> ExecutableModel:
        """Rebuild an executable model from :meth:`ExecutableModel.to_payload` data."""
        raise NotImplementedError(f"the {self.name or type(self).__name__} format cannot load shipped models")
