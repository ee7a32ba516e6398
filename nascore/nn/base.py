"""PyTorch modules that hold decisions: :class:`MutableModule`, :class:`ModelSpace`, :class:`ParametrizedModule`.

A model space is an ordinary ``nn.Module`` tree in which some modules hold decisions. Built
normally, the tree is a *space*: every primitive keeps all its candidates and runs its default
when called, so the space is itself a working model. Built inside :func:`fixed_arch` (or
:func:`model_context`), every primitive returns the concrete module for the sample instead, so the
same code produces one frozen model with no nascore classes left in it (except model spaces and
user :class:`ParametrizedModule` classes, which stay as themselves with concrete arguments).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.space import (
    LabelledMutable,
    Mutable,
    Sample,
    auto_label,
    collect_mutables,
    current_frozen_sample,
    frozen_context,
    label_scope,
)
from nascore.space.mutable import contains_mutable, default_structure, freeze_structure

__all__ = [
    "MutableModule",
    "ModelSpace",
    "ParametrizedModule",
    "fixed_arch",
    "model_context",
    "freeze_tree",
    "is_frozen_build",
]


class MutableModule(Mutable, nn.Module):
    """An ``nn.Module`` that may hold decisions of its own and contain others in its children."""

    def add_mutable(self, mutable: Mutable) -> Mutable:
        """Register a decision (or expression) that this module depends on."""
        self.__dict__.setdefault("_nascore_mutables", []).append(mutable)
        return mutable

    @property
    def mutables(self) -> list[Mutable]:
        """The decisions registered on this module itself (not its children)."""
        return list(self.__dict__.get("_nascore_mutables", ()))

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from collect_mutables(self.mutables)
        yield from _child_mutables(self)

    def freeze(self, sample: Sample) -> nn.Module:
        """A frozen copy of this module for ``sample`` (the original is left untouched)."""
        self.validate(sample)
        return freeze_tree(copy.deepcopy(self), sample)

    def frozen(self, sample: Sample) -> nn.Module:
        """Freeze in place: return the concrete module for ``sample``, reusing this one's parts.

        Subclasses override this; the default freezes the children and keeps the module itself.
        """
        _freeze_children(self, sample)
        return self


def _child_mutables(module: nn.Module) -> Iterator[LabelledMutable]:
    for child in module.children():
        if isinstance(child, MutableModule):
            yield from child.leaf_mutables()
        else:
            yield from _child_mutables(child)


def _freeze_children(module: nn.Module, sample: Sample) -> None:
    for name, child in list(module.named_children()):
        new = freeze_tree(child, sample)
        if new is not child:
            module._modules[name] = new


def freeze_tree(module: nn.Module, sample: Sample) -> nn.Module:
    """Freeze ``module`` and everything below it in place; return the concrete module."""
    if isinstance(module, MutableModule):
        return module.frozen(sample)
    _freeze_children(module, sample)
    return module


def is_frozen_build() -> bool:
    """Whether modules built now are built as one frozen model (inside :func:`fixed_arch`)."""
    return current_frozen_sample() is not None


class model_context(frozen_context):  # noqa: N801
    """Build models as the architecture ``sample`` describes (the engine-facing name)."""


def fixed_arch(sample: Sample | str | Path, verbose: bool = False) -> frozen_context:
    """Context manager: a model space built inside is one frozen model for ``sample``.

    ``sample`` is a ``{label: value}`` dict, or the path of a JSON file holding one (as exported
    by :meth:`nascore.experiment.Experiment.export_top_models`)::

        with nascore.fixed_arch({"conv2": 1, "feature": 128}):
            model = MyModelSpace()
    """
    if isinstance(sample, (str, Path)):
        path = Path(sample)
        try:
            sample = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SearchSpaceError(f"cannot read the architecture file {str(path)!r}: {exc}") from exc
    if not isinstance(sample, dict):
        raise SearchSpaceError(f"fixed_arch expects a {{label: value}} dict, got {type(sample).__name__}")
    if verbose:
        import logging

        logging.getLogger(__name__).info("Fixed architecture: %s", sample)
    return model_context(sample)


# --- ModelSpace ----------------------------------------------------------------------------------


class ModelSpace(MutableModule):
    """The root of a user's search space. Subclass it and build the model in ``__init__``.

    Construction is recorded (class and init arguments) so that the space can be rebuilt as one
    frozen model from a sample: that is what the ``simplified`` format ships to trials. Every
    construction opens a fresh label scope, so automatic labels are the same each time.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _wrap_space_init(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @property
    def init_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments this space was constructed with."""
        return self.__dict__.get("_nascore_init_arguments", ((), {}))

    def frozen(self, sample: Sample) -> nn.Module:
        module = super().frozen(sample)
        module.__dict__["_nascore_frozen_sample"] = dict(sample)
        return module

    @property
    def sample(self) -> Sample | None:
        """The sample this model was frozen with (``None`` for a search space)."""
        return self.__dict__.get("_nascore_frozen_sample")


def _wrap_space_init(init: Any) -> Any:
    @functools.wraps(init)
    def __init__(self: ModelSpace, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        if self.__dict__.get("_nascore_in_init"):
            init(self, *args, **kwargs)
            return
        object.__setattr__(self, "_nascore_in_init", True)
        object.__setattr__(self, "_nascore_init_arguments", (args, kwargs))
        # The outermost space restarts the label counters; a space nested in another gets a named scope.
        # (``auto_label`` already returns the full path, hence ``root=True``.)
        scope = label_scope(None) if label_scope.current() is None else label_scope(auto_label("model"), root=True)
        try:
            with scope:
                init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_nascore_in_init", False)
        sample = current_frozen_sample()
        if sample is not None:
            self.__dict__["_nascore_frozen_sample"] = dict(sample)

    return __init__


# --- ParametrizedModule ----------------------------------------------------------------------------


class ParametrizedModule(MutableModule):
    """A module whose init arguments may be decisions (choices or expressions of choices).

    Subclass it directly for your own module, or wrap an existing layer::

        class MutableConv2d(ParametrizedModule, nn.Conv2d, wraps=nn.Conv2d): ...

    Built as a space, the module is constructed with the default value of every decision and
    registers the decisions. Built frozen, the arguments are frozen first; a wrapper of an existing
    layer then returns a plain instance of that layer. A parametrized module is a *basic unit*: its
    inside is never searched through.
    """

    _nascore_wraps: type[nn.Module] | None = None

    def __init_subclass__(cls, wraps: type[nn.Module] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if wraps is not None:
            cls._nascore_wraps = wraps
        if "__init__" in cls.__dict__ or wraps is not None:
            cls.__init__ = _wrap_parametrized_init(cls.__init__)  # type: ignore[method-assign]

    @classmethod
    def wrapped_layer(cls, *, inherited: bool = False) -> type[nn.Module] | None:
        """The layer class this class wraps (its ``wraps=`` argument), or ``None``.

        Only the class that declares ``wraps=`` (``MutableConv2d`` wraps ``nn.Conv2d``) is built
        frozen as the plain layer; a subclass of it that does not declare ``wraps=`` itself is built
        as itself, and has ``None`` here unless ``inherited=True``, which looks the declaration up
        through the base classes too (``nn.Conv2d`` for a subclass of ``MutableConv2d``).
        """
        if inherited:
            return cls._nascore_wraps
        return cls.__dict__.get("_nascore_wraps")

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if args and args[0] is _Restoring:
            return super().__new__(cls)  # copy / pickle recreating an existing instance
        wraps = cls.wrapped_layer()
        if wraps is not None:
            sample = current_frozen_sample()
            if sample is not None:
                return wraps(*freeze_structure(args, sample), **freeze_structure(kwargs, sample))
        return super().__new__(cls)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # copy.deepcopy and pickle call ``cls.__new__`` with these arguments; the marker keeps a
        # copy made inside ``fixed_arch`` from being turned into the wrapped layer.
        return (_Restoring,), {}

    @property
    def trace_args(self) -> tuple[Any, ...]:
        """The positional init arguments as given, decisions included (not their default values)."""
        return self.__dict__.get("_nascore_trace", ((), {}))[0]

    @property
    def trace_kwargs(self) -> dict[str, Any]:
        """The keyword init arguments as given, decisions included (not their default values)."""
        return self.__dict__.get("_nascore_trace", ((), {}))[1]

    def frozen(self, sample: Sample) -> nn.Module:
        args, kwargs = self.trace_args, self.trace_kwargs
        wraps = type(self).wrapped_layer()
        if not contains_mutable((args, kwargs)):
            module = super().frozen(sample)
            if wraps is not None:
                # Nothing to choose: become the plain layer in place, keeping parameters and state.
                module.__class__ = wraps
                for key in ("_nascore_trace", "_nascore_mutables", "_nascore_in_init"):
                    module.__dict__.pop(key, None)
            return module
        if wraps is not None:
            return wraps(*freeze_structure(args, sample), **freeze_structure(kwargs, sample)).train(self.training)
        with frozen_context(sample):
            return type(self)(*args, **kwargs)

    def extra_repr(self) -> str:
        if not self.mutables:
            return super().extra_repr()
        return ", ".join(repr(m) for m in self.mutables)


class _Restoring:
    """Marker passed to ``ParametrizedModule.__new__`` when copy or pickle recreates an instance."""


def _wrap_parametrized_init(init: Any) -> Any:
    @functools.wraps(init)
    def __init__(self: ParametrizedModule, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        if self.__dict__.get("_nascore_in_init"):
            init(self, *args, **kwargs)
            return
        object.__setattr__(self, "_nascore_in_init", True)
        try:
            sample = current_frozen_sample()
            if sample is not None:
                init(self, *freeze_structure(args, sample), **freeze_structure(kwargs, sample))
            else:
                init(self, *default_structure(args), **default_structure(kwargs))
        finally:
            object.__setattr__(self, "_nascore_in_init", False)
        self.__dict__["_nascore_trace"] = (args, kwargs)
        if sample is None:
            for mutable in _unique(collect_mutables((args, kwargs))):
                self.add_mutable(mutable)

    return __init__


def _unique(mutables: Iterator[LabelledMutable]) -> list[LabelledMutable]:
    seen: dict[int, LabelledMutable] = {}
    for m in mutables:
        seen.setdefault(id(m), m)
    return list(seen.values())
