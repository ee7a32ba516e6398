"""Proxyless supernet modules (ProxylessNAS): one sampled path runs, binary gates train the architecture.

Each step samples one value per decision from ``softmax(alpha)`` and runs only that path, so memory
grows with one path, not with every candidate as in DARTS. During an architecture step (when
:attr:`ArchParameters.binary_gates` is on) the output of a module goes through :func:`binary_gate`:
forward it is the output itself; backward it gives ``alpha`` the ProxylessNAS gradient
``dL/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i)``, where ``dL/dg_j = <dL/dy, y_j>`` and
``y_j`` is the output of candidate ``j``, recomputed without autograd from the saved input, one
candidate at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from nascore.errors import StrategyError
from nascore.nn import Cell, ChosenInputs, InputChoice, LayerChoice, Repeat
from nascore.space import Categorical, CategoricalMultiple, Sample
from nascore_strategies.oneshot.supermodule.base import ArchModuleMixin, ArchParameters
from nascore_strategies.oneshot.supermodule.sampling import (
    PathSamplingCell,
    PathSamplingInput,
    PathSamplingLayer,
    PathSamplingRepeat,
    SamplingMixin,
)

__all__ = [
    "ProxylessMixedCell",
    "ProxylessMixedInput",
    "ProxylessMixedLayer",
    "ProxylessMixedRepeat",
    "binary_gate",
]


class _BinaryGate(torch.autograd.Function):
    """``output`` unchanged; its backward computes the gradient of ``alpha`` from binary gates."""

    @staticmethod
    def forward(ctx: Any, alpha: torch.Tensor, output: torch.Tensor, recompute: Callable[[int], torch.Tensor], index: int, where: str) -> torch.Tensor:  # type: ignore[override]
        ctx.recompute = recompute
        ctx.index = index
        ctx.where = where
        ctx.save_for_backward(alpha, output.detach())
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        alpha, output = ctx.saved_tensors
        with torch.no_grad():
            gate_grads = torch.empty(alpha.shape, dtype=torch.float32, device=alpha.device)
            for k in range(alpha.numel()):
                out_k = output if k == ctx.index else ctx.recompute(k)
                if out_k.shape != output.shape:
                    raise StrategyError(
                        f"{ctx.where}: the candidates give outputs of different shapes ({tuple(output.shape)} and "
                        f"{tuple(out_k.shape)}); Proxyless compares the outputs of all candidates to train the "
                        "architecture, so they must have the same shape. Use random-oneshot or enas for this space"
                    )
                gate_grads[k] = (out_k.float() * grad_output.float()).sum()
            probs = F.softmax(alpha.float(), dim=-1)
            grad_alpha = probs * (gate_grads - (gate_grads * probs).sum())
        ctx.recompute = None
        return grad_alpha.to(alpha.dtype), grad_output, None, None, None


def binary_gate(alpha: torch.Tensor, output: Any, recompute: Callable[[int], Any], index: int, where: str = "binary gate") -> Any:
    """Route ``output`` (of the candidate at ``index``) through a binary gate on ``alpha``.

    ``recompute(k)`` returns candidate ``k``'s output (it is called without autograd). For a tuple
    output, the gate is on its first tensor.
    """
    if isinstance(output, torch.Tensor):
        return _BinaryGate.apply(alpha, output, _no_grad(recompute), index, where)
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        gated = _BinaryGate.apply(alpha, output[0], _no_grad(lambda k: recompute(k)[0]), index, where)
        return type(output)([gated, *output[1:]])
    raise StrategyError(f"Proxyless gates tensor outputs (or tuples starting with one), not {type(output).__name__}")


def _no_grad(fn: Callable[[int], Any]) -> Callable[[int], Any]:
    def run(k: int) -> Any:
        with torch.no_grad():
            return fn(k)

    return run



class ProxylessMixin(ArchModuleMixin, SamplingMixin):
    """Samples missing values from ``softmax(alpha)``; exports the largest ``alpha``; gates in architecture steps."""

    def resample(self, memo: Sample) -> Sample:
        for label in self.search_space_spec():  # type: ignore[attr-defined]
            if label not in memo:
                memo[label] = sample_from_alpha(self.arch, label)
        return SamplingMixin.resample(self, memo)

    def gates_on(self) -> bool:
        return self.arch.binary_gates and torch.is_grad_enabled()

    def gate(self, label: str, output: Any, recompute: Callable[[int], Any], index: int | None = None) -> Any:
        """Gate ``output`` (of the candidate at ``index``: by default the sampled one) on ``label`` when an
        architecture step is running."""
        alpha = self.arch.alpha(label)
        if not (self.gates_on() and alpha.requires_grad):
            return output
        if index is None:
            index = self.arch.decisions[label].index_of(self._sampled[label])  # type: ignore[attr-defined]
        return binary_gate(alpha, output, recompute, index, self.where)  # type: ignore[attr-defined]


def sample_from_alpha(arch: ArchParameters, label: str) -> Any:
    """A value of ``label`` drawn from ``softmax(alpha)``: for a multiple choice, ``n_chosen`` distinct
    candidates drawn without replacement (in candidate order)."""
    decision = arch.decisions[label]
    with torch.no_grad():
        probs = arch.probs(label).float()
        if isinstance(decision, CategoricalMultiple):
            picked = torch.multinomial(probs, int(decision.n_chosen or 1), replacement=False)
            return [decision.values[int(i)] for i in sorted(picked.tolist())]
        index = int(torch.multinomial(probs, 1))
    return decision.values[index]  # type: ignore[attr-defined]


class ProxylessMixedLayer(ProxylessMixin, PathSamplingLayer):
    """``LayerChoice``: runs the sampled candidate, gated on the decision."""

    mode = "proxyless"

    def __init__(self, layer_choice: LayerChoice, arch: ArchParameters, where: str) -> None:
        super().__init__(layer_choice, where)
        self.bind_arch(arch, where)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        output = self.candidate(self._sampled[self.label])(*args, **kwargs)
        return self.gate(self.label, output, lambda k: self.candidate(self.names[k])(*args, **kwargs))


class ProxylessMixedInput(ProxylessMixin, PathSamplingInput):
    """``InputChoice``: passes the sampled input(s), each gated on the decision.

    With ``n_chosen = k > 1``, ``k`` distinct inputs are drawn from ``softmax(alpha)`` and reduced as
    the frozen model reduces them; each chosen input goes through its own binary gate, so the
    architecture gradient is the ProxylessNAS gradient of every chosen position (for ``"sum"``,
    ``k`` times the single-input gradient). ``n_chosen=None`` (any number) is refused.
    """

    mode = "proxyless"

    def __init__(self, input_choice: InputChoice, arch: ArchParameters, where: str) -> None:
        super().__init__(input_choice, where)
        if not isinstance(self.decision, Categorical) and self.n_chosen is None:
            raise StrategyError(
                f"{where}: n_chosen=None (any number of inputs) cannot be sampled from Proxyless's probabilities; "
                "give a fixed n_chosen, or use random-oneshot / enas"
            )
        self.bind_arch(arch, where)

    def forward(self, candidate_inputs: list[Any]) -> Any:
        chosen = self._sampled[self.label]

        def recompute(k: int) -> Any:
            return candidate_inputs[k]

        if isinstance(chosen, int):
            return self.gate(self.label, candidate_inputs[chosen], recompute)
        gated = list(candidate_inputs)
        for j in chosen:
            gated[j] = self.gate(self.label, candidate_inputs[j], recompute, index=j)
        return ChosenInputs.select(gated, chosen, self.reduction, self.label)


class ProxylessMixedRepeat(ProxylessMixin, PathSamplingRepeat):
    """``Repeat``: runs the sampled depth; the gate of each depth decision compares the other depths' outputs."""

    mode = "proxyless"

    def __init__(self, repeat: Repeat, arch: ArchParameters, where: str) -> None:
        super().__init__(repeat, where)
        self.bind_arch(arch, where)

    def forward(self, x: Any) -> Any:
        depth = self.depth.value(self._sampled)
        if not self.gates_on():
            for block in self.blocks[:depth]:
                x = block(x)
            return x
        outputs = self.prefix_outputs(x, list(range(depth + 1)))
        saved = {d: out.detach() if isinstance(out, torch.Tensor) else out for d, out in outputs.items()}
        result = outputs[depth]

        def output_at(other: int) -> Any:
            if other in saved:
                return saved[other]
            y = saved[depth]
            for block in self.blocks[depth:other]:
                y = block(y)
            return y

        for leaf in self.depth.leaves:
            def recompute(k: int, leaf: Categorical = leaf) -> Any:
                return output_at(self.depth.value({**self._sampled, leaf.label: leaf.values[k]}))

            result = self.gate(leaf.label, result, recompute)
        return result


class ProxylessMixedCell(ProxylessMixin, PathSamplingCell):
    """``Cell``: each slot runs its sampled operator on its sampled input, gated on both decisions."""

    mode = "proxyless"

    def __init__(self, cell: Cell, arch: ArchParameters, where: str) -> None:
        super().__init__(cell, where)
        self.bind_arch(arch, where)

    def slot_forward(self, state: int, k: int, input_decision: Categorical, op_decision: Categorical, states: list[Any]) -> Any:
        ops = self.slot_ops(state, k)
        j = self._sampled[input_decision.label]
        name = self._sampled[op_decision.label]
        output = ops.get(name, j)(states[j])
        output = self.gate(input_decision.label, output, lambda jj: ops.get(name, jj)(states[jj]))
        return self.gate(op_decision.label, output, lambda oo: ops.get(op_decision.values[oo], j)(states[j]))
