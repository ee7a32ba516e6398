"""PyTorch modules that hold decisions: :class:`MutableModule`, :class:`ModelSpace`, :class:`ParametrizedModule`.

A model space is an ordinary ``nn.Module`` tree in which some modules hold decisions. Built
normally, the tree is a *space*: every primitive keeps all its candidates and runs its default
when called, so the space is itself a working model. Built inside :func:`fixed_arch` (or
:func:`model_context`), every primitive returns the concrete module for the sample instead, so the
same code produces one frozen model with no nascore classes left in it (except model spaces and
user :class:`ParametrizedModule` classes, which stay as themselves with concrete arguments).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from nascore.errors import SampleMissingError, SearchSpaceError, UnknownLabelError
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
from nascore.space.conditions import Decisions, conditional_leaves
from nascore.space.label import check_label
from nascore.space.mutable import contains_mutable, default_missing, default_structure, freeze_structure

__all__ = [
    "MutableModule",
    "ModelSpace",
    "ParametrizedModule",
    "fixed_arch",
    "model_context",
    "freeze_tree",
    "is_frozen_build",
    "module_conditional_leaves",
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

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        yield from conditional_leaves(self.mutables)
        yield from _child_conditional_leaves(self)

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


def _child_conditional_leaves(module: nn.Module) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    for child in module.children():
        if isinstance(child, MutableModule):
            yield from child.conditional_leaves()
        else:
            yield from _child_conditional_leaves(child)


def module_conditional_leaves(module: nn.Module) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """The decisions in ``module`` (any ``nn.Module``) with the conditions under which each is active."""
    if isinstance(module, MutableModule):
        yield from module.conditional_leaves()
    else:
        yield from _child_conditional_leaves(module)


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
    """Build models as the architecture ``sample`` describes (the engine-facing name).

    The formats enter it with samples they validated against the space already. With
    ``check_labels=True`` (what :func:`fixed_arch` does), a label of ``sample`` that the model
    space built inside does not have is refused with an
    :class:`~nascore.errors.UnknownLabelError` when the space's construction ends.
    """

    def __init__(self, sample: Sample, *, check_labels: bool = False) -> None:
        super().__init__(sample)
        self._label_check: _LabelCheck | None = None
        self._label_check_token: contextvars.Token[Any] | None = None
        if check_labels:
            self._label_check = _LabelCheck(self.sample)
            self.sample = self._label_check.sample
        self._defaults: contextlib.ExitStack | None = None

    def __enter__(self) -> Sample:
        merged = super().__enter__()
        # Without the check (a sample a format validated), a space built inside is not checked by an outer fixed_arch.
        self._label_check_token = _label_check.set(self._label_check)
        # Decisions in branches the sample does not take (candidates not chosen) are built with their defaults.
        self._defaults = contextlib.ExitStack()
        self._defaults.enter_context(default_missing(self._label_check.defaulted if self._label_check else set()))
        return merged

    def __exit__(self, *exc: object) -> None:
        if self._defaults is not None:
            self._defaults.close()
            self._defaults = None
        if self._label_check_token is not None:
            _label_check.reset(self._label_check_token)
            self._label_check_token = None
        super().__exit__(*exc)
        if self._label_check is not None and exc[0] is None:
            self._label_check.check_defaults_explained()


class _TrackedSample(dict):  # type: ignore[type-arg]
    """A sample that records the labels looked up in it: a frozen build reads the label of every decision it makes."""

    def __init__(self, sample: Sample) -> None:
        super().__init__(sample)
        self.read: set[Any] = set()

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)
        return super().__contains__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


class _LabelCheck:
    """The labels check of one :func:`fixed_arch`: which labels the builds inside read, and which spaces have.

    Every label the frozen build reads is a label of the space. A label it does not read is either
    a decision the chosen architecture does not use (a block of a ``Repeat`` beyond the chosen
    depth, a candidate not chosen) or unknown; only then is the space built once more as a search
    space (random state kept) to tell which.
    """

    def __init__(self, sample: Sample) -> None:
        self.sample = _TrackedSample(sample)
        self.labels = list(sample)  # those given (not those frozen_context.update adds while building)
        self.given = dict(sample)
        self.known: set[Any] = set()
        #: Labels the sample lacks that the build took defaults for, and those checked to be inactive.
        self.defaulted: set[str] = set()
        self.inactive: set[str] = set()

    def unexplained(self) -> list[Any]:
        return [label for label in self.labels if label not in self.sample.read and label not in self.known]

    def check(self, space: ModelSpace) -> None:
        """Refuse the sample if it holds labels ``space`` (just built frozen from it) does not have, or
        lacks a decision that matters for it (one the build took the default of)."""
        if not self.unexplained() and self.defaulted <= self.inactive:
            return
        decisions = _space_decisions(space)
        if decisions is None:
            self.inactive |= self.defaulted  # cannot tell: as before, the build decides
            return
        labels = list(decisions.mutables)
        self.known.update(labels)
        unknown = self.unexplained()
        active = set(decisions.active_labels(self.given))
        for label in sorted(self.defaulted - self.inactive):
            if label in active:
                mutable = decisions.mutables[label]
                why = decisions.why_active(label)
                hint = f"; the sample has the unknown label(s) {', '.join(map(repr, unknown))}: a typo?" if unknown else ""
                raise SampleMissingError(
                    f"the sample of fixed_arch has no value for label {label!r} (expected one of {mutable.describe()})"
                    + (f", which is active because {why}" if why else "") + hint,
                    label=label,
                )
            self.inactive.add(label)
        if unknown:
            raise UnknownLabelError.for_labels(unknown, labels, what="the sample of fixed_arch")

    def check_defaults_explained(self) -> None:
        """At the end of ``fixed_arch``: a default taken outside any model space is a missing value."""
        missing = sorted(self.defaulted - self.inactive)
        if missing:
            raise SampleMissingError(
                f"the sample of fixed_arch has no value for label {missing[0]!r}"
                + (f" (nor for {missing[1:]!r})" if len(missing) > 1 else ""),
                label=missing[0],
            )


_log = logging.getLogger(__name__)


def _space_decisions(space: ModelSpace) -> Decisions | None:
    """The decisions of ``space``'s class built as a search space with its init arguments (``None``: it cannot be)."""
    args, kwargs = space.init_arguments
    state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            # A new context: as a search space with its own labels, outside fixed_arch.
            unfrozen = contextvars.Context().run(type(space), *args, **kwargs)
            return unfrozen.decisions()
    except Exception as exc:  # the check must not break a build that worked
        _log.warning(
            "fixed_arch: cannot build %s as a search space to check the labels of the sample (%s: %s); not checked",
            type(space).__name__, type(exc).__name__, exc,
        )
        return None
    finally:
        random.setstate(state)


_label_check: contextvars.ContextVar[_LabelCheck | None] = contextvars.ContextVar("nascore_fixed_arch_labels", default=None)


def _check_fixed_arch_labels(space: ModelSpace) -> None:
    """At the end of the construction of a model space inside :func:`fixed_arch`: check the sample's labels."""
    check = _label_check.get()
    if check is not None and label_scope.current() is None:  # the outermost space only
        check.check(space)


def fixed_arch(sample: Sample | str | Path, verbose: bool = False) -> frozen_context:
    """Context manager: a model space built inside is one frozen model for ``sample``.

    ``sample`` is a ``{label: value}`` dict, or the path of a JSON file holding one (as exported
    by :meth:`nascore.experiment.Experiment.export_top_models`)::

        with nascore.fixed_arch({"conv2": 1, "feature": 128}):
            model = MyModelSpace()

    A label of ``sample`` that the model space built inside does not have (a typo) is refused
    with an :class:`~nascore.errors.UnknownLabelError` naming it, the closest label of the space
    and the space's labels, when the construction of the space ends.
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
        _log.info("Fixed architecture: %s", sample)
    return model_context(sample, check_labels=True)


# --- ModelSpace ----------------------------------------------------------------------------------


class ModelSpace(MutableModule):
    """The root of a user's search space. Subclass it and build the model in ``__init__``.

    Construction is recorded (class and init arguments) so that the space can be rebuilt as one
    frozen model from a sample: that is what the ``simplified`` format ships to trials. Every
    construction opens a fresh label scope, so automatic labels are the same each time.

    ``label_prefix`` (NNI's spelling) puts every label made while the space is constructed, explicit
    or automatic, under a prefix; a space with a prefix built inside another one nests its prefix
    under the enclosing scope, so two spaces can reuse the same label names::

        class Cell(ModelSpace, label_prefix="cell"):
            def __init__(self):
                super().__init__()
                self.op = LayerChoice([...], label="op")  # labelled "cell/op"

        class Net(ModelSpace, label_prefix="net"):
            def __init__(self):
                super().__init__()
                self.cell = Cell()  # "net/cell/op"

    As in NNI, the prefix belongs to the class it is declared on: a subclass that does not declare
    ``label_prefix`` itself has none. Without a prefix, explicit labels are kept as given and
    automatic ones are numbered (a space nested in another gets its own ``model_<n>`` scope).
    """

    _nascore_label_prefix: str | None = None

    def __init_subclass__(cls, label_prefix: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if label_prefix is not None:
            check_label(label_prefix, what="label prefix", scoped=False)
        cls._nascore_label_prefix = label_prefix
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
        # A space with a label prefix puts every label made inside under it (nested under the
        # enclosing scope). Otherwise the outermost space restarts the label counters and a space
        # nested in another gets a named scope (``auto_label`` returns the full path: ``root=True``).
        prefix = type(self)._nascore_label_prefix  # set on every subclass: not inherited, as in NNI
        if prefix is not None:
            scope = label_scope(prefix, prefix_labels=True)
        elif label_scope.current() is None:
            scope = label_scope(None)
        else:
            scope = label_scope(auto_label("model"), root=True)
        try:
            with scope:
                init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_nascore_in_init", False)
        sample = current_frozen_sample()
        if sample is not None:
            self.__dict__["_nascore_frozen_sample"] = dict(sample)
            _check_fixed_arch_labels(self)

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

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        traced = list(conditional_leaves(self.__dict__.get("_nascore_trace", ())))
        yield from traced
        known = {id(m) for m, _ in traced}
        yield from conditional_leaves([m for m in self.mutables if id(m) not in known])  # added by hand
        yield from _child_conditional_leaves(self)

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
