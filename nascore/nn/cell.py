"""A DARTS / NASNet-style cell: :class:`Cell`, and its frozen form :class:`FrozenCell`.

A cell has ``num_predecessors`` inputs and ``num_nodes`` nodes. Node ``i`` is the sum of
``num_ops_per_node`` operators; each operator takes one input chosen among the predecessors and
the nodes before it (an :class:`~nascore.nn.InputChoice`) and applies one operator chosen among the
candidates (a :class:`~nascore.nn.LayerChoice`). The cell's output concatenates every node
(``merge_op="all"``) or only the nodes no other node reads (``merge_op="loose_end"``).

States are numbered as in NNI: the predecessors are ``0 .. num_predecessors - 1`` and node ``n``
is state ``num_predecessors + n``. The decisions of the operator ``k`` of the node at state ``i``
are labelled ``"<label>/input_<i>_<k>"`` and ``"<label>/op_<i>_<k>"``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Union

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn.base import MutableModule, freeze_tree
from nascore.nn.choice import ChosenInputs, InputChoice, LayerChoice
from nascore.space import Categorical, Sample, auto_label, current_frozen_sample, frozen_context, label_scope
from nascore.space.label import check_label

__all__ = ["Cell", "FrozenCell", "CellOpFactory", "build_op", "loose_ends"]

CellOpFactory = Callable[..., nn.Module]
"""``(node_index, op_index, input_index) -> nn.Module``; it may also take fewer arguments (or none)."""

OpCandidates = Union[
    Sequence[Union[nn.Module, CellOpFactory]],
    dict[str, Union[nn.Module, CellOpFactory]],
    Callable[[], Any],
]
Preprocessor = Callable[[list[torch.Tensor]], list[torch.Tensor]]
Postprocessor = Callable[[torch.Tensor, list[torch.Tensor]], Any]

_MERGE_OPS = ("all", "loose_end")


# --- arguments ------------------------------------------------------------------------------------


def _factory_arity(factory: Callable[..., Any]) -> int:
    """How many of ``(node_index, op_index, input_index)`` to pass to ``factory``.

    A callable with no required positional parameter (``nn.ReLU``, ``lambda: ...``, a partial)
    is called with none; one that takes ``*args`` or at least three positional parameters gets all
    three; otherwise as many as it has positional parameters.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return 3
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
        return 3
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if not required:
        return 0
    if len(required) > 3:
        return -1
    return min(len(positional), 3)


def _check_positive_int(value: Any, name: str, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SearchSpaceError(f"Cell {label!r}: {name} must be a positive int, got {value!r}")
    return value


class _CellSpec:
    """The validated arguments of a cell and how to create its operators."""

    def __init__(
        self,
        op_candidates: OpCandidates,
        num_nodes: int,
        num_ops_per_node: int = 1,
        num_predecessors: int = 1,
        merge_op: str = "all",
        preprocessor: Preprocessor | None = None,
        postprocessor: Postprocessor | None = None,
        concat_dim: int = 1,
        *,
        label: str | None = None,
    ) -> None:
        self.label = check_label(label) if label is not None else auto_label("cell")
        self.num_nodes = _check_positive_int(num_nodes, "num_nodes", self.label)
        self.num_ops_per_node = _check_positive_int(num_ops_per_node, "num_ops_per_node", self.label)
        self.num_predecessors = _check_positive_int(num_predecessors, "num_predecessors", self.label)
        if merge_op not in _MERGE_OPS:
            raise SearchSpaceError(
                f"Cell {self.label!r}: merge_op must be one of {_MERGE_OPS}, got {merge_op!r}"
            )
        self.merge_op = merge_op
        for name, fn in (("preprocessor", preprocessor), ("postprocessor", postprocessor)):
            if fn is not None and not callable(fn):
                raise SearchSpaceError(
                    f"Cell {self.label!r}: {name} must be callable, got {type(fn).__name__}"
                )
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        if isinstance(concat_dim, bool) or not isinstance(concat_dim, int):
            raise SearchSpaceError(f"Cell {self.label!r}: concat_dim must be an int, got {concat_dim!r}")
        self.concat_dim = concat_dim
        self.candidates_factory: Callable[[], Any] | None = None
        self.candidates: dict[Any, Any] | None = None
        self.is_dict = False
        if isinstance(op_candidates, dict):
            self.candidates, self.is_dict = dict(op_candidates), True
        elif isinstance(op_candidates, (list, tuple, nn.ModuleList)):
            self.candidates = dict(enumerate(op_candidates))
        elif callable(op_candidates) and not isinstance(op_candidates, nn.Module):
            # NNI's older form: a callable returning the list or dict of candidate modules.
            self.candidates_factory = op_candidates
        else:
            raise SearchSpaceError(
                f"Cell {self.label!r}: op_candidates must be a list or a dict of modules or factories "
                f"(node_index, op_index, input_index) -> nn.Module, got {type(op_candidates).__name__}"
            )
        if self.candidates is not None:
            if not self.candidates:
                raise SearchSpaceError(f"Cell {self.label!r} has no op candidates: give at least one")
            for name, candidate in self.candidates.items():
                self._check_candidate(name, candidate)

    def _check_candidate(self, name: Any, candidate: Any) -> None:
        if self.is_dict and not isinstance(name, str):
            raise SearchSpaceError(f"Cell {self.label!r}: candidate names must be strings, got {name!r}")
        if isinstance(candidate, nn.Module):
            return
        if not callable(candidate):
            raise SearchSpaceError(
                f"Cell {self.label!r}: candidate {name!r} is a {type(candidate).__name__}, "
                "not an nn.Module or a factory (node_index, op_index, input_index) -> nn.Module"
            )
        if _factory_arity(candidate) < 0:
            raise SearchSpaceError(
                f"Cell {self.label!r}: candidate factory {name!r} requires more than the three arguments "
                "(node_index, op_index, input_index) a cell passes"
            )

    # --- labels and positions ----------------------------------------------------------------------

    def positions(self) -> list[tuple[int, int]]:
        """``(state index, op index)`` of every operator, in creation order."""
        return [
            (self.num_predecessors + n, k)
            for n in range(self.num_nodes)
            for k in range(self.num_ops_per_node)
        ]

    def input_label(self, state: int, k: int) -> str:
        return f"{self.label}/input_{state}_{k}"

    def op_label(self, state: int, k: int) -> str:
        return f"{self.label}/op_{state}_{k}"

    # --- operators -----------------------------------------------------------------------------------

    def input_index_factories(self) -> dict[Any, CellOpFactory]:
        """The candidates that are factories receiving the chosen input index."""
        return {
            name: candidate
            for name, candidate in (self.candidates or {}).items()
            if not isinstance(candidate, nn.Module) and _factory_arity(candidate) == 3
        }

    def build_candidates(self, state: int, k: int, input_index: int | None) -> dict[Any, nn.Module]:
        if self.candidates is None:
            return self._from_candidates_factory(state, k)
        return {
            name: build_op(self.label, name, candidate, state, k, input_index)
            for name, candidate in self.candidates.items()
        }

    def _from_candidates_factory(self, state: int, k: int) -> dict[Any, nn.Module]:
        assert self.candidates_factory is not None
        with label_scope(self.op_label(state, k), root=True):
            result = self.candidates_factory()
        if isinstance(result, dict):
            candidates = dict(result)
            if not _has_str_keys(candidates):
                raise SearchSpaceError(
                    f"Cell {self.label!r}: candidate names must be strings, got {list(candidates)!r}"
                )
        elif isinstance(result, (list, tuple, nn.ModuleList)):
            candidates = dict(enumerate(result))
        else:
            raise SearchSpaceError(
                f"Cell {self.label!r}: the op_candidates callable must return a list or a dict of modules, "
                f"got {type(result).__name__}"
            )
        if not candidates:
            raise SearchSpaceError(f"Cell {self.label!r}: the op_candidates callable returned no candidates")
        bad = [name for name, module in candidates.items() if not isinstance(module, nn.Module)]
        if bad:
            raise SearchSpaceError(f"Cell {self.label!r}: op candidates {bad!r} are not nn.Modules")
        return candidates

    @staticmethod
    def layer_choice_input(candidates: dict[Any, nn.Module]) -> Any:
        """A dict for named candidates, a list (values are indices) for the items of a list."""
        return candidates if _has_str_keys(candidates) else list(candidates.values())

    # --- building -------------------------------------------------------------------------------------

    def build_frozen(self, sample: Sample) -> FrozenCell:
        """The concrete cell for ``sample``, creating only the chosen operators."""
        ops: list[list[nn.Module]] = [[] for _ in range(self.num_nodes)]
        inputs: list[list[ChosenInputs]] = [[] for _ in range(self.num_nodes)]
        for state, k in self.positions():
            chosen_input = InputChoice(state, 1, "none", label=self.input_label(state, k))
            assert isinstance(chosen_input, ChosenInputs)
            if self.candidates is None:
                built = self._from_candidates_factory(state, k)
                op = built[Categorical(list(built), label=self.op_label(state, k)).freeze(sample)]
            else:
                chosen = Categorical(list(self.candidates), label=self.op_label(state, k)).freeze(sample)
                candidate = self.candidates[chosen]
                op = build_op(self.label, chosen, candidate, state, k, chosen_input.chosen)  # type: ignore[arg-type]
            ops[state - self.num_predecessors].append(op)
            inputs[state - self.num_predecessors].append(chosen_input)
        return FrozenCell(
            ops,
            inputs,
            num_predecessors=self.num_predecessors,
            merge_op=self.merge_op,
            preprocessor=self.preprocessor,
            postprocessor=self.postprocessor,
            concat_dim=self.concat_dim,
            label=self.label,
        )


def _has_str_keys(candidates: dict[Any, Any]) -> bool:
    return all(isinstance(name, str) for name in candidates)


def build_op(
    label: str,
    name: Any,
    candidate: nn.Module | CellOpFactory,
    node_index: int,
    op_index: int,
    input_index: int | None,
) -> nn.Module:
    """Build the candidate ``name`` of the operator ``op_index`` of the node ``node_index``, as a cell does.

    ``label`` is the cell's label; ``node_index`` is the node's state index (it counts the
    predecessors, so the first node is ``num_predecessors``); ``input_index`` is the chosen input
    (``None`` in a search space). A module candidate is deep-copied; a factory is called with as
    many of ``(node_index, op_index, input_index)`` as it takes, inside the label scope
    ``"<label>/op_<node_index>_<op_index>/<name>"``, so the automatic labels of decisions created
    inside it are the ones they get in the cell (and in a model built with
    :func:`~nascore.nn.fixed_arch`).

    Tools that rebuild a cell's operators for a chosen input (the graph format, one-shot
    supernets) call this with the factories of :attr:`Cell.input_factories`.

    :raises SearchSpaceError: if the factory does not return an ``nn.Module``.
    """
    if isinstance(candidate, nn.Module):
        return copy.deepcopy(candidate)
    args = (node_index, op_index, input_index)[: _factory_arity(candidate)]
    # Each candidate gets its own scope, so automatic labels inside an operator depend neither on
    # the other candidates nor on which candidate is built (a frozen cell builds only the chosen one).
    with label_scope(f"{label}/op_{node_index}_{op_index}/{name}", root=True):
        module = candidate(*args)
    if not isinstance(module, nn.Module):
        raise SearchSpaceError(
            f"Cell {label!r}: the factory of candidate {name!r} returned a {type(module).__name__}, not an nn.Module"
        )
    return module


# --- forward ---------------------------------------------------------------------------------------


def _cell_forward(cell: Cell | FrozenCell, inputs: tuple[Any, ...]) -> Any:
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        predecessors = list(inputs[0])
    else:
        predecessors = list(inputs)
    if len(predecessors) != cell.num_predecessors:
        raise SearchSpaceError(
            f"Cell {cell.label!r} takes {cell.num_predecessors} input(s) (num_predecessors), got {len(predecessors)}"
        )
    states = (
        list(cell.preprocessor(list(predecessors))) if cell.preprocessor is not None else list(predecessors)
    )
    if len(states) != cell.num_predecessors:
        raise SearchSpaceError(
            f"Cell {cell.label!r}: the preprocessor returned {len(states)} tensors, expected {cell.num_predecessors}"
        )
    for node_ops, node_inputs in zip(cell.ops, cell.inputs):
        outputs = [op(choose(states)) for op, choose in zip(node_ops, node_inputs)]
        states.append(sum(outputs[1:], outputs[0]))
    this_cell = torch.cat([states[i] for i in cell.output_node_indices], cell.concat_dim)
    if cell.postprocessor is None:
        return this_cell
    return cell.postprocessor(this_cell, predecessors)


def loose_ends(num_predecessors: int, num_nodes: int, chosen_inputs: Iterable[int]) -> list[int]:
    """The nodes (as state indices, in order) that no operator reads: a ``"loose_end"`` cell's output.

    ``chosen_inputs`` holds the input state index chosen by every operator of the cell (in any
    order). For example, with 2 predecessors and 3 nodes where the operators read states
    ``[0, 1, 2, 2]``, the loose ends are ``[3, 4]``.
    """
    used = set(chosen_inputs)
    return [i for i in range(num_predecessors, num_predecessors + num_nodes) if i not in used]


# --- the search space and the frozen cell -----------------------------------------------------------


class Cell(MutableModule):
    """A DARTS / NASNet-style cell (NNI's ``Cell``).

    ``op_candidates`` is a list or a dict whose items are modules (deep-copied for every operator)
    or factories ``(node_index, op_index, input_index) -> nn.Module`` (called for every operator;
    ``node_index`` counts the predecessors, so the first node is ``num_predecessors``;
    ``input_index`` is ``None`` in a search space and the chosen input when built frozen). A
    factory may take fewer arguments, or none. NNI's older form, a callable returning the list or
    dict of modules, is accepted too.

    ``preprocessor(inputs) -> inputs`` transforms the predecessors (default: unchanged);
    ``postprocessor(this_cell, inputs)`` makes the return value (default: ``this_cell``).
    ``forward`` takes one tensor, several tensors, or a list of ``num_predecessors`` tensors.

    Built inside :func:`~nascore.nn.fixed_arch`, ``Cell(...)`` returns a :class:`FrozenCell`
    holding only the chosen operators.

    Its public structure, which tools that convert or supernet a cell read (none of them needs a
    private attribute), is:

    * ``label``, ``num_nodes``, ``num_ops_per_node``, ``num_predecessors``, ``merge_op``,
      ``concat_dim``, ``preprocessor`` and ``postprocessor``: the arguments, validated;
    * ``ops[n][k]``: the :class:`~nascore.nn.LayerChoice` of the operator ``k`` of node ``n``
      (state ``num_predecessors + n``), labelled ``"<label>/op_<state>_<k>"``;
    * ``inputs[n][k]``: its :class:`~nascore.nn.InputChoice` over the ``state`` earlier states,
      labelled ``"<label>/input_<state>_<k>"``;
    * :attr:`input_factories`: the candidates rebuilt for the chosen input on freezing
      (see :func:`build_op`);
    * :attr:`output_node_indices`: the states concatenated into the output under the defaults
      (see :func:`loose_ends`).

    >>> cell = Cell([nn.Conv2d(16, 16, 3, padding=1), nn.MaxPool2d(3, 1, 1)], num_nodes=4,
    ...             num_predecessors=2, merge_op="loose_end", label="normal")
    >>> sorted(cell.simplify())[:2]
    ['normal/input_2_0', 'normal/input_3_0']
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        sample = current_frozen_sample()
        if sample is None or not (args or kwargs):
            return super().__new__(cls)
        return _CellSpec(*args, **kwargs).build_frozen(sample)

    def __init__(
        self,
        op_candidates: OpCandidates,
        num_nodes: int,
        num_ops_per_node: int = 1,
        num_predecessors: int = 1,
        merge_op: str = "all",
        preprocessor: Preprocessor | None = None,
        postprocessor: Postprocessor | None = None,
        concat_dim: int = 1,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__()
        spec = _CellSpec(
            op_candidates,
            num_nodes,
            num_ops_per_node,
            num_predecessors,
            merge_op,
            preprocessor,
            postprocessor,
            concat_dim,
            label=label,
        )
        self._label = spec.label
        self.num_nodes = spec.num_nodes
        self.num_ops_per_node = spec.num_ops_per_node
        self.num_predecessors = spec.num_predecessors
        self.merge_op = spec.merge_op
        self.concat_dim = spec.concat_dim
        # Registration order (preprocessor, ops, inputs, postprocessor) is the order of the state_dict.
        self.preprocessor = spec.preprocessor
        self.ops = nn.ModuleList()
        self.inputs = nn.ModuleList()
        self.postprocessor = spec.postprocessor
        # Factories that see the chosen input are called again on freezing (only they are kept).
        self._input_factories = spec.input_index_factories()
        for state, k in spec.positions():
            if k == 0:
                self.ops.append(nn.ModuleList())
                self.inputs.append(nn.ModuleList())
            candidates = spec.build_candidates(state, k, None)
            self.ops[-1].append(
                LayerChoice(spec.layer_choice_input(candidates), label=spec.op_label(state, k))
            )
            self.inputs[-1].append(InputChoice(state, 1, "none", label=spec.input_label(state, k)))

    @property
    def label(self) -> str:
        """The cell's label, the prefix of the labels of all its decisions."""
        return self._label

    @property
    def input_factories(self) -> Mapping[Any, CellOpFactory]:
        """The candidates (by name) that are factories taking the chosen input index (read-only).

        These are the factories with three positional parameters ``(node_index, op_index,
        input_index)``: in the space they were built with ``input_index=None``; freezing builds the
        chosen one again for the chosen input (with :func:`build_op`), keeping the trained weights
        when they fit. Candidates given as modules, and factories taking fewer arguments, are not here.
        """
        return MappingProxyType(self._input_factories)

    @property
    def output_node_indices(self) -> list[int]:
        """The states concatenated into the output (with ``"loose_end"``: under the default inputs)."""
        if self.merge_op == "all":
            return list(range(self.num_predecessors, self.num_predecessors + self.num_nodes))
        defaults = [choice.choice.default_value() for node in self.inputs for choice in node]
        return loose_ends(self.num_predecessors, self.num_nodes, defaults)

    def forward(self, *inputs: Any) -> Any:
        return _cell_forward(self, inputs)

    def frozen(self, sample: Sample) -> nn.Module:
        ops: list[list[nn.Module]] = []
        inputs: list[list[nn.Module]] = []
        for node_ops, node_inputs in zip(self.ops, self.inputs):
            ops.append([])
            inputs.append([])
            for k, (layer_choice, input_choice) in enumerate(zip(node_ops, node_inputs)):
                state = self.num_predecessors + len(ops) - 1
                chosen_inputs = freeze_tree(input_choice, sample)
                chosen = layer_choice.choice.freeze(sample)
                op = freeze_tree(layer_choice, sample)
                if chosen in self._input_factories:
                    op = self._rebuild(chosen, state, k, chosen_inputs.chosen, sample, op)
                ops[-1].append(op)
                inputs[-1].append(chosen_inputs)
        processors = [
            freeze_tree(fn, sample) if isinstance(fn, nn.Module) else fn
            for fn in (self.preprocessor, self.postprocessor)
        ]
        return FrozenCell(
            ops,
            inputs,  # type: ignore[arg-type]
            num_predecessors=self.num_predecessors,
            merge_op=self.merge_op,
            preprocessor=processors[0],
            postprocessor=processors[1],
            concat_dim=self.concat_dim,
            label=self.label,
        )

    def _rebuild(
        self, name: Any, state: int, k: int, input_index: int, sample: Sample, trained: nn.Module
    ) -> nn.Module:
        """Recreate a factory operator for its chosen input, keeping the trained weights when they fit.

        A factory sees ``input_index=None`` in the space and the chosen input when frozen, so the
        frozen operator may differ (a stride, a width). Its weights come from the space's operator
        whenever the two have the same parameter names and shapes.
        """
        with frozen_context(sample):
            op = build_op(self.label, name, self._input_factories[name], state, k, input_index)
        trained_state = trained.state_dict()
        new_state = op.state_dict()
        if trained_state.keys() == new_state.keys() and all(
            trained_state[key].shape == new_state[key].shape for key in new_state
        ):
            op.load_state_dict(trained_state)
        return op.train(trained.training)

    def extra_repr(self) -> str:
        return (
            f"label={self.label!r}, num_nodes={self.num_nodes}, num_ops_per_node={self.num_ops_per_node}, "
            f"num_predecessors={self.num_predecessors}, merge_op={self.merge_op!r}"
        )


class FrozenCell(nn.Module):
    """A cell with every decision made: fixed operators and :class:`~nascore.nn.ChosenInputs`.

    It has the same submodule names as the :class:`Cell` it comes from, so the state dict of a
    cell built with :func:`~nascore.nn.fixed_arch` loads into the result of ``space.freeze`` and back.
    """

    def __init__(
        self,
        ops: Sequence[Sequence[nn.Module]],
        inputs: Sequence[Sequence[ChosenInputs]],
        *,
        num_predecessors: int,
        merge_op: str = "all",
        preprocessor: Preprocessor | None = None,
        postprocessor: Postprocessor | None = None,
        concat_dim: int = 1,
        label: str = "cell",
    ) -> None:
        super().__init__()
        if merge_op not in _MERGE_OPS:
            raise SearchSpaceError(f"Cell {label!r}: merge_op must be one of {_MERGE_OPS}, got {merge_op!r}")
        self.label = label
        self.num_predecessors = num_predecessors
        self.num_nodes = len(ops)
        self.merge_op = merge_op
        self.concat_dim = concat_dim
        self.preprocessor = preprocessor
        self.ops = nn.ModuleList(nn.ModuleList(node) for node in ops)
        self.inputs = nn.ModuleList(nn.ModuleList(node) for node in inputs)
        self.postprocessor = postprocessor
        if merge_op == "all":
            self.output_node_indices = list(range(num_predecessors, num_predecessors + self.num_nodes))
        else:
            chosen = [choice.chosen for node in inputs for choice in node]
            self.output_node_indices = loose_ends(num_predecessors, self.num_nodes, chosen)  # type: ignore[arg-type]

    def forward(self, *inputs: Any) -> Any:
        return _cell_forward(self, inputs)

    def extra_repr(self) -> str:
        return f"label={self.label!r}, output_node_indices={self.output_node_indices}"
