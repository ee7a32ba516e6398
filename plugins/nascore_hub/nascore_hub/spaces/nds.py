"""The NDS cell-based model spaces: NASNet, ENAS, AmoebaNet, PNAS and DARTS.

From Radosavovic, Johnson, Xie, Lo & Dollár, "On Network Design Spaces for Visual Recognition",
ICCV 2019 (https://arxiv.org/abs/1905.13214), which puts the cell spaces of five NAS papers into one
skeleton to compare them as distributions of models:

* NASNet: Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018
  (https://arxiv.org/abs/1707.07012); 13 operators, 5 nodes, loose ends concatenated;
* ENAS: Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018
  (https://arxiv.org/abs/1802.03268); 5 operators, 5 nodes, loose ends;
* AmoebaNet: Real et al., "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019
  (https://arxiv.org/abs/1802.01548); 8 operators, 5 nodes, loose ends;
* PNAS: Liu et al., "Progressive Neural Architecture Search", ECCV 2018 (https://arxiv.org/abs/1712.00559);
  8 operators, 5 nodes, every node concatenated;
* DARTS: Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019
  (https://arxiv.org/abs/1806.09055); 7 operators (``none`` left out), 4 nodes, every node concatenated.

A network is a stem, then three stages of cells (the first cell of the second and third stages is a
reduction cell: stride 2, twice the channels), then global pooling and a linear classifier. Each cell
(:class:`~nascore.nn.Cell`, labels ``"normal/..."`` and ``"reduce/..."``: every normal cell shares one
architecture, every reduction cell another) takes the outputs of the two cells before it; each node
sums two operators, each on an input chosen among the cell's inputs and the nodes before it.

The NDS paper samples width and depth too: by default ``width`` is a choice among (16, 24, 32)
(label ``"width"``) and ``num_cells`` among (4, 8, 12, 16, 20) (label ``"depth"``); passing ints
gives the paper's fixed-width-and-depth ("fix-w-d") variants, which one-shot strategies search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError, StrategyError
from nascore.nn import Cell, ModelSpace, MutableBatchNorm2d, MutableConv2d, Repeat
from nascore.nn.cell import FrozenCell
from nascore.space import MutableExpression
from nascore_hub.spaces.nds_ops import (
    OPS,
    AuxiliaryHead,
    CellInput,
    Classifier,
    DropPath,
    ReLUConvBN,
    _SlicedFreeze,
    make_op,
)
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "NDS",
    "NASNet",
    "ENAS",
    "AmoebaNet",
    "PNAS",
    "DARTS",
    "NDSCellOp",
    "NormalCellOp",
    "CellPreprocessor",
    "CellPostprocessor",
    "UnknownPresetError",
    "genotype_sample",
    "output_multiplier",
]

NUM_PREDECESSORS = 2
NUM_OPS_PER_NODE = 2


# --- cells --------------------------------------------------------------------------------------------------


class NDSCellOp:
    """Factory ``(node_index, op_index, input_index) -> nn.Module`` of operator ``name`` in a reduction cell.

    An operator reading one of the cell's inputs has stride 2, one reading a node stride 1 (in the search
    space, where the input is not chosen yet, stride 2: the default inputs are the cell's inputs). A
    one-shot supernet builds it once per possible input; the operators of a normal cell
    (:class:`NormalCellOp`) do not depend on their input, and are built once.
    """

    def __init__(self, name: str, channels: Any, reduction: bool = True, drop_path_prob: float = 0.0) -> None:
        self.name = name
        self.channels = channels
        self.reduction = reduction
        self.drop_path_prob = drop_path_prob

    def build(self, stride: int) -> nn.Module:
        op = make_op(self.name, self.channels, stride)
        if self.drop_path_prob > 0 and not isinstance(op, nn.Identity):
            return nn.Sequential(op, DropPath(self.drop_path_prob))
        return op

    def __call__(self, node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        reads_input = input_index is None or input_index < NUM_PREDECESSORS
        return self.build(2 if self.reduction and reads_input else 1)


class NormalCellOp(NDSCellOp):
    """Factory ``(node_index, op_index) -> nn.Module`` of operator ``name`` in a normal cell (stride 1)."""

    def __init__(self, name: str, channels: Any, drop_path_prob: float = 0.0) -> None:
        super().__init__(name, channels, False, drop_path_prob)

    def __call__(self, node_index: int, op_index: int) -> nn.Module:  # type: ignore[override]
        return self.build(1)


class CellPreprocessor(nn.Module):
    """Bring a cell's two inputs to ``channels`` channels and the same resolution.

    ``pre0`` (a :class:`~nascore_hub.spaces.nds_ops.CellInput`) takes the output of the cell before the
    previous one, halving it when the previous cell was a reduction cell (``reduce``); ``pre1`` (a 1x1
    :class:`~nascore_hub.spaces.nds_ops.ReLUConvBN`) takes the previous cell's output.
    """

    def __init__(self, pprev_channels: Any, prev_channels: Any, channels: Any, reduce: Any) -> None:
        super().__init__()
        self.pre0 = CellInput(pprev_channels, channels, reduce)
        self.pre1 = ReLUConvBN(prev_channels, channels, 1)

    def forward(self, cells: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = cells
        return [self.pre0(pprev), self.pre1(prev)]


class CellPostprocessor(nn.Module):
    """A cell returns ``[previous cell's output, its own output]``, so that cells chain."""

    def forward(self, this_cell: torch.Tensor, previous_cells: list[torch.Tensor]) -> list[torch.Tensor]:
        return [previous_cells[-1], this_cell]


def output_multiplier(cell: nn.Module) -> Any:
    """How many nodes ``cell`` concatenates: an int when it is fixed (or merges every node), else the
    expression of its input decisions counting the nodes no operator reads (``merge_op="loose_end"``)."""
    if isinstance(cell, FrozenCell) or cell.merge_op == "all":
        return len(cell.output_node_indices)
    choices = [input_choice.choice for node in cell.inputs for input_choice in node]
    total: Any = 0
    for state in range(cell.num_predecessors, cell.num_predecessors + cell.num_nodes):
        unread: Any = 1
        for choice in choices:
            if state in choice.values:
                unread = unread * MutableExpression.to_int(MutableExpression.ne(choice, state))
        total = total + unread
    return total


def genotype_sample(normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The sample of a DARTS-style genotype: for each cell, ``(operator, input)`` pairs, two per node in order."""
    sample: dict[str, Any] = {}
    for label, pairs in (("normal", normal), ("reduce", reduce)):
        if len(pairs) % NUM_OPS_PER_NODE:
            raise SearchSpaceError(f"a genotype has {NUM_OPS_PER_NODE} (operator, input) pairs per node, got {len(pairs)}")
        for position, (op, input_index) in enumerate(pairs):
            state, k = NUM_PREDECESSORS + position // NUM_OPS_PER_NODE, position % NUM_OPS_PER_NODE
            sample[f"{label}/op_{state}_{k}"] = op
            sample[f"{label}/input_{state}_{k}"] = input_index
    return sample


def _check_choice_argument(value: Any, name: str, label: str, minimum: int) -> Any:
    """An int, or a choice labelled ``label`` among the ints of an iterable."""
    if isinstance(value, bool):
        raise SearchSpaceError(f"NDS: {name} must be an int or a tuple of ints, got {value!r}")
    if isinstance(value, int):
        values = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        values = list(value)
    else:
        raise SearchSpaceError(f"NDS: {name} must be an int or a tuple of ints, got {value!r}")
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise SearchSpaceError(f"NDS: every {name} must be an int of at least {minimum}, got {value!r}")
    if isinstance(value, int):
        return value
    return nascore.choice(label, values)


def _when(pred: Any, true: Any, false: Any) -> Any:
    return MutableExpression.condition(pred, true, false)


# --- the skeleton -------------------------------------------------------------------------------------------


class NDS(PresetSpace, ModelSpace):
    """The unified NASNet-style space of NDS (Radosavovic et al., "On Network Design Spaces for Visual
    Recognition", ICCV 2019, https://arxiv.org/abs/1905.13214), of which :class:`NASNet`, :class:`ENAS`,
    :class:`AmoebaNet`, :class:`PNAS` and :class:`DARTS` are instances (they differ in ``op_candidates``,
    ``merge_op`` and ``num_nodes_per_cell``).

    Stem: for ``dataset="cifar"`` a 3x3 convolution to ``3 * width`` channels; for ``"imagenet"`` three
    3x3 convolutions of stride 2 (``width // 2``, ``width``, ``width`` channels; the cell after it reads the
    two last). Then ``num_cells`` cells in three stages of ``num_cells // 3`` or so (the first cell of the
    second and third stages is a reduction cell), with ``width``, ``2 * width`` and ``4 * width`` channels
    per operator; a cell's output concatenates its nodes (every node, or with ``merge_op="loose_end"`` the
    nodes no operator reads), so it has that many times its channels. Then a
    :class:`~nascore_hub.spaces.nds_ops.Classifier` over ``num_labels`` classes.

    Decisions: for ``normal`` and ``reduce``, ``"<cell>/op_<i>_<k>"`` (an operator name) and
    ``"<cell>/input_<i>_<k>"`` (an int, the state read: 0 and 1 are the cell's inputs, ``i >= 2`` the
    nodes), for node ``i`` (``2`` to ``num_nodes_per_cell + 1``) and operator ``k`` (0 or 1); plus
    ``"width"`` and ``"depth"`` when ``width`` and ``num_cells`` are tuples. ``space_size()`` is
    ``(|ops| ** (2 * nodes) * prod_{i=2}^{nodes+1} i ** 2) ** 2 * |widths| * |depths|``.

    :param op_candidates: operator names, keys of :data:`~nascore_hub.spaces.nds_ops.OPS`.
    :param merge_op: ``"all"`` or ``"loose_end"`` (see :class:`~nascore.nn.Cell`).
    :param num_nodes_per_cell: the nodes of a cell.
    :param width: the channels of the first stage's operators: an int, or a tuple to choose from.
    :param num_cells: the number of cells (at least 3): an int, or a tuple to choose from.
    :param dataset: ``"cifar"`` or ``"imagenet"``: the stem (and the auxiliary head's pooling).
    :param num_labels: the classes (default: 10 for CIFAR, 1000 for ImageNet).
    :param auxiliary_loss: add an :class:`~nascore_hub.spaces.nds_ops.AuxiliaryHead` after the first cell of
        the last stage; in training mode the model then returns ``(logits, auxiliary_logits)``.
    :param drop_path_prob: drop-path probability of the operators (except skip connections); 0 for none.

    One-shot strategies search the cells of the fixed-width-and-depth variants (``width`` and
    ``num_cells`` ints); with ``merge_op="loose_end"`` the layers reading a cell's output use the first
    channels of their weights when a sampled cell has fewer loose ends, and take the exact slice when the
    model is frozen.
    """

    #: Fixed architectures (name -> sample of the two cells); the subclasses set theirs.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: The names :meth:`preset` knows.
    PRESET_NAMES: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.PRESET_NAMES = tuple(cls.PRESETS)

    def __init__(
        self,
        op_candidates: Sequence[str],
        merge_op: str = "all",
        num_nodes_per_cell: int = 4,
        width: int | Sequence[int] = 16,
        num_cells: int | Sequence[int] = 20,
        dataset: str = "imagenet",
        num_labels: int | None = None,
        auxiliary_loss: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        ops = list(op_candidates)
        unknown = [op for op in ops if op not in OPS]
        if not ops or unknown or len(set(ops)) != len(ops):
            raise SearchSpaceError(
                f"NDS: op_candidates must be distinct names among {sorted(OPS)}, got {ops!r}"
                + (f" (unknown: {unknown!r})" if unknown else "")
            )
        if merge_op not in ("all", "loose_end"):
            raise SearchSpaceError(f"NDS: merge_op must be 'all' or 'loose_end', got {merge_op!r}")
        if isinstance(num_nodes_per_cell, bool) or not isinstance(num_nodes_per_cell, int) or num_nodes_per_cell < 1:
            raise SearchSpaceError(f"NDS: num_nodes_per_cell must be a positive int, got {num_nodes_per_cell!r}")
        if dataset not in ("cifar", "imagenet"):
            raise SearchSpaceError(f"NDS: dataset must be 'cifar' or 'imagenet', got {dataset!r}")
        if not 0.0 <= drop_path_prob < 1.0:
            raise SearchSpaceError(f"NDS: drop_path_prob must be in [0, 1), got {drop_path_prob!r}")
        self.op_candidates = ops
        self.merge_op = merge_op
        self.num_nodes_per_cell = num_nodes_per_cell
        self.width = width
        self.num_cells = num_cells
        self.dataset = dataset
        self.num_labels = num_labels if num_labels is not None else (10 if dataset == "cifar" else 1000)
        if isinstance(self.num_labels, bool) or not isinstance(self.num_labels, int) or self.num_labels < 1:
            raise SearchSpaceError(f"NDS: num_labels must be a positive int, got {num_labels!r}")
        self.auxiliary_loss = auxiliary_loss
        self.drop_path_prob = drop_path_prob

        c = _check_choice_argument(width, "width", "width", 2)
        if isinstance(width, int) and width % 2 or not isinstance(width, int) and any(w % 2 for w in c.values):
            raise SearchSpaceError(f"NDS: width must be even (reduction halves it in two), got {width!r}")
        depth = _check_choice_argument(num_cells, "num_cells", "depth", 3)

        if dataset == "imagenet":
            self.stem0 = nn.Sequential(
                MutableConv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
                MutableBatchNorm2d(c // 2),
                nn.ReLU(inplace=False),
                MutableConv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
                MutableBatchNorm2d(c),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False), MutableConv2d(c, c, 3, stride=2, padding=1, bias=False), MutableBatchNorm2d(c)
            )
            state: tuple[Any, Any, Any] = (c, c, True)
        else:
            self.stem = nn.Sequential(MutableConv2d(3, 3 * c, 3, padding=1, bias=False), MutableBatchNorm2d(3 * c))
            state = (3 * c, 3 * c, False)

        self.stages = nn.ModuleList()
        aux_channels: Any = None
        for s in range(3):
            channels = c * 2**s
            count = (s + 1) * depth // 3 - s * depth // 3
            first = self._cell(state, channels, reduction=s > 0)
            first_out = output_multiplier(first) * channels
            after_first = (state[1], first_out, s > 0)
            if s == 2:
                aux_channels = first_out
            if isinstance(count, int):
                cells = [first]
                state = after_first
                for _ in range(count - 1):
                    cell = self._cell(state, channels, reduction=False)
                    cells.append(cell)
                    state = (state[1], output_multiplier(cell) * channels, False)
                self.stages.append(nn.Sequential(*cells))
            else:
                normal_out: list[Any] = []

                def block(index: int, after_first: Any = after_first, first_out: Any = first_out,
                          channels: Any = channels, normal_out: list[Any] = normal_out) -> nn.Module:
                    if index == 0:
                        inputs = after_first
                    elif index == 1:
                        inputs = (first_out, normal_out[0], False)
                    else:
                        inputs = (normal_out[0], normal_out[0], False)
                    cell = self._cell(inputs, channels, reduction=False)
                    if not normal_out:
                        normal_out.append(output_multiplier(cell) * channels)
                    return cell

                rest = count - 1
                self.stages.append(nn.Sequential(first, Repeat(block, rest, label=f"stage{s}")))
                if not normal_out:  # no normal cell built (a frozen depth of one cell in this stage)
                    state = after_first
                else:
                    out = normal_out[0]
                    first_is_zero = MutableExpression.eq(rest, 0)
                    state = (
                        _when(first_is_zero, after_first[0], _when(MutableExpression.eq(rest, 1), first_out, out)),
                        _when(first_is_zero, first_out, out),
                        _when(first_is_zero, s > 0, False),
                    )

        if auxiliary_loss:
            self.auxiliary_head = AuxiliaryHead(aux_channels, self.num_labels, dataset)
        self.classifier = Classifier(state[1], self.num_labels)

    def _cell(self, inputs: tuple[Any, Any, Any], channels: Any, *, reduction: bool) -> nn.Module:
        pprev, prev, prev_reduced = inputs
        ops: dict[str, Any] = {
            name: NDSCellOp(name, channels, True, self.drop_path_prob) if reduction
            else NormalCellOp(name, channels, self.drop_path_prob)
            for name in self.op_candidates
        }
        return Cell(
            ops,
            self.num_nodes_per_cell,
            NUM_OPS_PER_NODE,
            NUM_PREDECESSORS,
            self.merge_op,
            preprocessor=CellPreprocessor(pprev, prev, channels, prev_reduced),
            postprocessor=CellPostprocessor(),
            label="reduce" if reduction else "normal",
        )

    def forward(self, x: torch.Tensor) -> Any:
        if self.dataset == "imagenet":
            s0 = self.stem0(x)
            pair = [s0, self.stem1(s0)]
        else:
            s = self.stem(x)
            pair = [s, s]
        aux = None
        for index, stage in enumerate(self.stages):
            pair = stage[0](pair)
            if index == 2 and self.auxiliary_loss and self.training:
                aux = self.auxiliary_head(pair[1])
            for block in list(stage)[1:]:
                pair = block(pair)
        logits = self.classifier(pair[1])
        if aux is not None:
            return logits, aux
        return logits

    def extra_oneshot_hooks(self, strategy: Any) -> list[Any]:
        """One-shot strategies search the cells of the fixed-width-and-depth variants; the layers reading a
        loose-end cell's output adapt to the sampled width themselves (they stay as they are)."""
        choices = [name for name, value in (("width", self.width), ("num_cells", self.num_cells)) if not isinstance(value, int)]
        if choices:
            raise StrategyError(
                f"{type(strategy).__name__} cannot search {type(self).__name__} with a choice of "
                f"{' and '.join(choices)}: one-shot strategies search the cells of the fixed-width-and-depth "
                f"spaces. Pass ints, e.g. {type(self).__name__}(width=16, num_cells=8), or use a multi-trial strategy"
            )

        def keep_sliced_layers(module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
            return True if isinstance(module, _SlicedFreeze) else None

        return [keep_sliced_layers]

    @classmethod
    def load_preset(cls, arch: str | Mapping[str, Any], **kwargs: Any) -> Any:
        """The model of ``arch`` (a preset name or a sample of the two cells), built frozen with ``kwargs``.

        A preset fixes the cells only: ``width`` and ``num_cells`` come from ``kwargs``, else from
        :attr:`PRESET_ARGUMENTS` (the paper's, where known); they must be ints unless the sample has them.
        """
        sample = cls.sample_of(arch)
        if isinstance(arch, str):
            kwargs = {**cls.preset_arguments(arch), **kwargs}
        for name, label in (("width", "width"), ("num_cells", "depth")):
            if label not in sample and not isinstance(kwargs.get(name), int):
                raise SearchSpaceError(
                    f"{cls.__name__}.load_preset({arch!r}): the preset fixes the cells only; pass {name}=<int> "
                    f"(e.g. {cls.__name__}.load_preset({arch!r}, width=16, num_cells=8))"
                )
        with nascore.fixed_arch(sample):
            return cls(**kwargs)


_SPACE_PARAMETERS = """
    :param width: the channels of the first stage's operators: an int (a fixed-width space), or a tuple to choose
        from (label ``"width"``).
    :param num_cells: the number of cells: an int (fixed depth), or a tuple to choose from (label ``"depth"``).
    :param dataset: ``"cifar"`` (default) or ``"imagenet"`` stem.
    :param num_labels: the classes (default: 10 for CIFAR, 1000 for ImageNet).
    :param auxiliary_loss: add the auxiliary head (training mode returns ``(logits, auxiliary_logits)``).
    :param drop_path_prob: drop-path probability of the operators.

    See :class:`NDS` for the skeleton, the labels and the one-shot support.
"""


class _NamedNDS(NDS):
    OPERATORS: ClassVar[tuple[str, ...]] = ()
    MERGE_OP: ClassVar[str] = "all"
    NUM_NODES: ClassVar[int] = 4

    def __init__(
        self,
        width: int | Sequence[int] = (16, 24, 32),
        num_cells: int | Sequence[int] = (4, 8, 12, 16, 20),
        dataset: str = "cifar",
        num_labels: int | None = None,
        auxiliary_loss: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__(
            self.OPERATORS,
            merge_op=self.MERGE_OP,
            num_nodes_per_cell=self.NUM_NODES,
            width=width,
            num_cells=num_cells,
            dataset=dataset,
            num_labels=num_labels,
            auxiliary_loss=auxiliary_loss,
            drop_path_prob=drop_path_prob,
        )


class NASNet(_NamedNDS):
    __doc__ = """The NASNet cell space (Zoph et al., "Learning Transferable Architectures for Scalable Image
    Recognition", CVPR 2018, https://arxiv.org/abs/1707.07012), as NDS defines it (Radosavovic et al., ICCV
    2019, https://arxiv.org/abs/1905.13214): 13 operators (:attr:`OPERATORS`), 5 nodes, the loose ends
    concatenated.

    Each cell has ``13 ** 10 * (2 * 3 * 4 * 5 * 6) ** 2 = 71,465,842,174,521,600`` (about 7.15e16)
    samples, so ``NASNet(width=16, num_cells=8).space_size()`` is their square, about 5.107e33, and the
    default space (3 widths, 5 depths) 15 times that, about 7.661e34 (``space_size`` returns a float).
    Preset: ``"nasnet-a"``.
    """ + _SPACE_PARAMETERS

    OPERATORS = (
        "skip_connect", "conv_3x1_1x3", "conv_7x1_1x7", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
        "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
    )
    MERGE_OP = "loose_end"
    NUM_NODES = 5
    PRESETS = {
        "nasnet-a": genotype_sample(
            [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
             ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 1)],
            [("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0), ("avg_pool_3x3", 1),
             ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2), ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
        ),
    }


class ENAS(_NamedNDS):
    __doc__ = """The ENAS cell space (Pham et al., "Efficient Neural Architecture Search via Parameter
    Sharing", ICML 2018, https://arxiv.org/abs/1802.03268), as NDS defines it (Radosavovic et al., ICCV 2019,
    https://arxiv.org/abs/1905.13214): 5 operators (:attr:`OPERATORS`), 5 nodes, the loose ends concatenated.

    Each cell has ``5 ** 10 * (2 * 3 * 4 * 5 * 6) ** 2 = 5,062,500,000,000`` samples, so
    ``ENAS(width=16, num_cells=8).space_size()`` is their square, about 2.563e25, and the default space 15
    times that, about 3.844e26. No preset (the ENAS cell is not given as a genotype in NDS).
    """ + _SPACE_PARAMETERS

    OPERATORS = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
    MERGE_OP = "loose_end"
    NUM_NODES = 5


class AmoebaNet(_NamedNDS):
    __doc__ = """The AmoebaNet cell space (Real et al., "Regularized Evolution for Image Classifier
    Architecture Search", AAAI 2019, https://arxiv.org/abs/1802.01548), as NDS defines it (Radosavovic et
    al., ICCV 2019, https://arxiv.org/abs/1905.13214): 8 operators (:attr:`OPERATORS`), 5 nodes, the loose
    ends concatenated.

    Each cell has ``8 ** 10 * (2 * 3 * 4 * 5 * 6) ** 2 = 556,627,761,561,600`` (about 5.57e14) samples,
    so ``AmoebaNet(width=16, num_cells=8).space_size()`` is their square, about 3.098e29, and the default
    space 15 times that, about 4.648e30. Preset: ``"amoebanet-a"``.
    """ + _SPACE_PARAMETERS

    OPERATORS = (
        "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
        "dil_sep_conv_3x3", "conv_7x1_1x7",
    )
    MERGE_OP = "loose_end"
    NUM_NODES = 5
    PRESETS = {
        "amoebanet-a": genotype_sample(
            [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2), ("sep_conv_3x3", 0),
             ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1), ("skip_connect", 0), ("avg_pool_3x3", 1)],
            [("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2), ("sep_conv_7x7", 0),
             ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
        ),
    }


_PNASNET_5_CELL = [
    ("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1), ("sep_conv_5x5", 1),
    ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 1),
]


class PNAS(_NamedNDS):
    __doc__ = """The PNAS cell space (Liu et al., "Progressive Neural Architecture Search", ECCV 2018,
    https://arxiv.org/abs/1712.00559), as NDS defines it (Radosavovic et al., ICCV 2019,
    https://arxiv.org/abs/1905.13214): 8 operators (:attr:`OPERATORS`), 5 nodes, every node concatenated.

    Each cell has ``8 ** 10 * (2 * 3 * 4 * 5 * 6) ** 2 = 556,627,761,561,600`` samples, as AmoebaNet's, so
    ``PNAS(width=16, num_cells=8).space_size()`` is about 3.098e29, and the default space about 4.648e30.
    Preset: ``"pnasnet-5"``.
    """ + _SPACE_PARAMETERS

    OPERATORS = (
        "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7", "skip_connect", "avg_pool_3x3",
        "max_pool_3x3", "dil_conv_3x3",
    )
    MERGE_OP = "all"
    NUM_NODES = 5
    PRESETS = {
        # PNASNet-5 uses one cell as both the normal and the reduction cell.
        "pnasnet-5": genotype_sample(_PNASNET_5_CELL, _PNASNET_5_CELL),
    }


class DARTS(_NamedNDS):
    __doc__ = """The DARTS cell space (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search",
    ICLR 2019, https://arxiv.org/abs/1806.09055), as NDS defines it (Radosavovic et al., ICCV 2019,
    https://arxiv.org/abs/1905.13214): 7 operators (:attr:`OPERATORS`; DARTS' ``none`` is left out), 4
    nodes, every node concatenated.

    Each cell has ``7 ** 8 * (2 * 3 * 4 * 5) ** 2 = 83,013,134,400`` samples, so
    ``DARTS(width=16, num_cells=8).space_size()`` is their square, about 6.891e21, and the default space 15
    times that, about 1.034e23. Presets: ``"darts-v1"`` and ``"darts-v2"`` (first and second order), which
    :meth:`load_preset` builds with the paper's CIFAR-10 size (``width=36, num_cells=20``) unless told.
    """ + _SPACE_PARAMETERS

    OPERATORS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                 "dil_conv_5x5")
    MERGE_OP = "all"
    NUM_NODES = 4
    PRESETS = {
        "darts-v1": genotype_sample(
            [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0),
             ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
            [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0), ("max_pool_3x3", 0),
             ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
        ),
        "darts-v2": genotype_sample(
            [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1),
             ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
            [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
             ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
        ),
    }
    PRESET_ARGUMENTS = {"darts-v1": {"width": 36, "num_cells": 20}, "darts-v2": {"width": 36, "num_cells": 20}}

