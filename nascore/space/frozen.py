"""The frozen context: a sample in force while a model is built as one fixed architecture.

``with frozen_context(sample):`` makes every primitive constructed inside build the concrete
module for ``sample`` instead of a search space. :func:`nascore.fixed_arch` is the public face.

Contexts nest (the samples merge, the inner one winning); ``with frozen_context.bypass():`` leaves
the innermost one for a while, so that code inside builds the full search space again (NNI's
``frozen_context.bypass``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from nascore.errors import SearchSpaceError
from nascore.space.mutable import Sample

__all__ = ["frozen_context", "current_frozen_sample"]

_current: contextvars.ContextVar[Sample | None] = contextvars.ContextVar("nascore_frozen_sample", default=None)
# The sample in force before each entered context, innermost last: what ``bypass`` goes back to.
_outer: contextvars.ContextVar[tuple[Sample | None, ...]] = contextvars.ContextVar("nascore_frozen_outer", default=())
# The layers (each context's own sample), innermost last: what ``update`` writes to.
_layers: contextvars.ContextVar[tuple[Sample, ...]] = contextvars.ContextVar("nascore_frozen_layers", default=())


class frozen_context:  # noqa: N801 - a context manager used like a function
    """Put ``sample`` in force for the code inside the ``with`` block (contexts nest: inner wins).

    ``frozen_context()`` with no sample puts an empty sample in force (to be filled with :meth:`update`).
    """

    def __init__(self, sample: Sample | None = None) -> None:
        self.sample = dict(sample) if sample is not None else {}
        self._tokens: list[tuple[contextvars.Token[Any], ...]] = []

    def __enter__(self) -> Sample:
        outer = _current.get()
        # Alone, the sample itself is in force (a subclass may hand in a dict that records reads).
        merged = {**outer, **self.sample} if outer else self.sample
        self._tokens.append(
            (_outer.set((*_outer.get(), outer)), _layers.set((*_layers.get(), self.sample)), _current.set(merged))
        )
        return merged

    def __exit__(self, *exc: object) -> None:
        assert self._tokens, "frozen_context exited without being entered"
        outer, layers, current = self._tokens.pop()
        _current.reset(current)
        _layers.reset(layers)
        _outer.reset(outer)

    @staticmethod
    def current() -> Sample | None:
        """The sample in force (the contexts merged, inner winning), or ``None`` outside any."""
        return _current.get()

    @staticmethod
    def update(sample: Sample) -> None:
        """Add ``sample`` to the innermost context (it is gone when that context exits)."""
        layers, current = _layers.get(), _current.get()
        if not layers or current is None:
            raise SearchSpaceError("frozen_context.update(...) needs a frozen_context: there is none in force")
        layers[-1].update(sample)
        if current is not layers[-1]:
            current.update(sample)

    @staticmethod
    @contextlib.contextmanager
    def bypass() -> Iterator[None]:
        """Leave the innermost frozen context for the code inside (a space built inside is a space).

        Only the innermost context is left: inside nested contexts, the outer samples stay in force
        and each needs its own ``bypass()``. Outside any context it does nothing.

        >>> with frozen_context({"width": 32}):
        ...     with frozen_context.bypass():
        ...         space = MySpace()  # the full search space, not the model for {"width": 32}
        """
        outer, layers = _outer.get(), _layers.get()
        if not outer:
            yield
            return
        tokens = (_current.set(outer[-1]), _outer.set(outer[:-1]), _layers.set(layers[:-1]))
        try:
            yield
        finally:
            _current.reset(tokens[0])
            _outer.reset(tokens[1])
            _layers.reset(tokens[2])


def current_frozen_sample() -> Sample | None:
    """The sample in force, or ``None`` when building a search space."""
    return _current.get()
