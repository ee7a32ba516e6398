"""What the hub's spaces share: named fixed architectures (presets) and the zero operator."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.space import Sample

__all__ = ["PresetSpace", "UnknownPresetError", "Zero"]


class UnknownPresetError(SearchSpaceError, KeyError):
    """A preset name that a space does not know (a ``KeyError`` too)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Zero(nn.Module):
    """An absent edge (NAS-Bench-201's ``none``): zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class PresetSpace:
    """Mixin of a :class:`~nascore.nn.ModelSpace` with fixed architectures of its paper, by name.

    A subclass sets :attr:`PRESETS` (name -> sample) and may override :meth:`sample_of` to accept
    more spellings of an architecture or to check it.
    """

    #: The fixed architectures, name -> sample.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: Init arguments a preset is built with by :meth:`load_preset` (its paper's widths, say), name -> kwargs.
    PRESET_ARGUMENTS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str) -> dict[str, Any]:
        """The sample of the fixed architecture ``name``; an unknown name raises
        :class:`UnknownPresetError` listing the known ones."""
        if name not in cls.PRESETS:
            known = ", ".join(map(repr, cls.PRESETS))
            raise UnknownPresetError(f"{cls.__name__} has no preset {name!r}; the presets are {known}")
        return dict(cls.PRESETS[name])

    @classmethod
    def sample_of(cls, arch: str | Mapping[str, Any]) -> dict[str, Any]:
        """The sample of ``arch``: a preset name or a sample."""
        return dict(arch) if isinstance(arch, Mapping) else cls.preset(arch)

    @classmethod
    def fixed_arch(cls, arch: str | Mapping[str, Any]) -> contextlib.AbstractContextManager[Sample]:
        """:func:`nascore.fixed_arch` for ``arch`` (see :meth:`sample_of`)::

            with NasBench201.fixed_arch("resnet"):
                model = NasBench201()  # one frozen model
        """
        return nascore.fixed_arch(cls.sample_of(arch))

    @classmethod
    def preset_arguments(cls, name: str) -> dict[str, Any]:
        """The init arguments :meth:`load_preset` builds the preset ``name`` with (unless overridden)."""
        cls.preset(name)  # unknown names raise
        return dict(cls.PRESET_ARGUMENTS.get(name, {}))

    @classmethod
    def load_preset(cls, arch: str | Mapping[str, Any], **kwargs: Any) -> Any:
        """The model of ``arch`` (a preset name or a sample), built frozen with fresh weights: with the
        preset's init arguments (:meth:`preset_arguments`, for a name in :attr:`PRESET_ARGUMENTS`) updated
        with ``kwargs``."""
        if isinstance(arch, str) and arch in cls.PRESET_ARGUMENTS:
            kwargs = {**cls.preset_arguments(arch), **kwargs}
        with cls.fixed_arch(arch):
            return cls(**kwargs)
