"""The frozen context: a sample in force while a model is built as one fixed architecture.

``with frozen_context(sample):`` makes every primitive constructed inside build the concrete
module for ``sample`` instead of a search space. :func:`nascore.fixed_arch` is the public face.
"""

from __future__ import annotations

import contextvars
from typing import Any

from nascore.space.mutable import Sample

__all__ = ["frozen_context", "current_frozen_sample"]

_current: contextvars.ContextVar[Sample | None] = contextvars.ContextVar("nascore_frozen_sample", default=None)


class frozen_context:  # noqa: N801 - a context manager used like a function
    """Put ``sample`` in force for the code inside the ``with`` block (contexts nest: inner wins)."""

    def __init__(self, sample: Sample) -> None:
        self.sample = dict(sample)
        self._token: contextvars.Token[Any] | None = None

    def __enter__(self) -> Sample:
        outer = _current.get()
        merged = {**outer, **self.sample} if outer else self.sample
        self._token = _current.set(merged)
        return merged

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _current.reset(self._token)
        self._token = None


def current_frozen_sample() -> Sample | None:
    """The sample in force, or ``None`` when building a search space."""
    return _current.get()
