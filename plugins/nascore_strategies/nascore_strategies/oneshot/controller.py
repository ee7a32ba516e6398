"""The ENAS controller: an LSTM that samples one architecture decision after another.

Each decision is a :class:`ReinforceField`. The LSTM reads the embedding of the previous choice
and outputs logits for the next decision: a categorical choice (one value), a choice of a fixed
number of inputs (sampled one after another without replacement), or a choice of any number of
inputs (one Bernoulli per candidate, like ENAS's skip connections, with a penalty pulling the
probability of each skip towards ``skip_target``). Sampling returns the log-probability and the
entropy of the sample, for REINFORCE.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import StrategyError
from nascore.space import Categorical, CategoricalMultiple, LabelledMutable, Sample

__all__ = ["ControllerSample", "ReinforceController", "ReinforceField", "fields_of"]


@attrs.frozen
class ReinforceField:
    """One decision the controller makes: ``size`` values; ``n_chosen`` for multiple choices (``None``: any number)."""

    label: str
    values: tuple[Any, ...]
    multiple: bool = False
    n_chosen: int | None = 1

    @property
    def size(self) -> int:
        return len(self.values)


def fields_of(decisions: dict[str, LabelledMutable]) -> list[ReinforceField]:
    """The controller fields of a space's decisions (categorical ones only)."""
    fields = []
    for label, decision in decisions.items():
        if isinstance(decision, Categorical):
            fields.append(ReinforceField(label, tuple(decision.values)))
        elif isinstance(decision, CategoricalMultiple):
            fields.append(ReinforceField(label, tuple(decision.values), True, decision.n_chosen))
        else:
            raise StrategyError(f"ENAS: decision {label!r} is a {type(decision).__name__}; the controller samples categorical decisions")
    return fields


@attrs.define
class ControllerSample:
    """A sampled architecture with its log-probability, entropy and skip penalty (tensors with gradients)."""

    sample: Sample
    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_penalty: torch.Tensor


class ReinforceController(nn.Module):
    """The ENAS controller (NNI's ``ReinforceController`` arguments).

    :param fields: the decisions, in sampling order.
    :param lstm_size: hidden units of the LSTM.
    :param lstm_num_layers: stacked LSTM layers.
    :param tanh_constant: logits become ``tanh_constant * tanh(logits)`` (``None``: no tanh).
    :param skip_target: target probability of each input of an any-number input choice.
    :param temperature: logits are divided by it (``None``: no temperature).
    :param entropy_reduction: ``"sum"`` or ``"mean"`` of the entropies of the decisions.
    """

    def __init__(
        self,
        fields: list[ReinforceField],
        lstm_size: int = 64,
        lstm_num_layers: int = 1,
        tanh_constant: float | None = 1.5,
        skip_target: float = 0.4,
        temperature: float | None = None,
        entropy_reduction: str = "sum",
    ) -> None:
        super().__init__()
        if not fields:
            raise StrategyError("ENAS: the controller has no decision to make")
        if entropy_reduction not in ("sum", "mean"):
            raise StrategyError(f"ENAS: entropy_reduction must be 'sum' or 'mean', got {entropy_reduction!r}")
        if not 0 < skip_target < 1:
            raise StrategyError(f"ENAS: skip_target must be in (0, 1), got {skip_target}")
        self.fields = list(fields)
        self.lstm_size = lstm_size
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.entropy_reduction = entropy_reduction
        self.skip_target = skip_target
        self.lstm = nn.LSTM(lstm_size, lstm_size, lstm_num_layers)
        self.g_emb = nn.Parameter(torch.randn(1, lstm_size) * 0.1)
        self.soft = nn.ModuleList(nn.Linear(lstm_size, f.size, bias=False) for f in self.fields)
        self.embedding = nn.ModuleList(nn.Embedding(f.size, lstm_size) for f in self.fields)

    def _logits(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.soft[index](hidden).squeeze(0)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def sample(self) -> ControllerSample:
        """Sample an architecture (with a computation graph for REINFORCE unless under ``no_grad``)."""
        device = self.g_emb.device
        inputs = self.g_emb
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        log_prob = torch.zeros((), device=device)
        entropy = torch.zeros((), device=device)
        skip_penalty = torch.zeros((), device=device)
        sample: Sample = {}
        for index, field in enumerate(self.fields):
            output, state = self.lstm(inputs.unsqueeze(0), state)
            logits = self._logits(index, output.squeeze(0))
            embedding = self.embedding[index].weight
            if not field.multiple:
                distribution = torch.distributions.Categorical(logits=logits)
                chosen = distribution.sample()
                log_prob = log_prob + distribution.log_prob(chosen)
                entropy = entropy + distribution.entropy()
                sample[field.label] = field.values[int(chosen)]
                inputs = embedding[chosen].unsqueeze(0)
            elif field.n_chosen is None:
                probs = torch.sigmoid(logits)
                distribution = torch.distributions.Bernoulli(probs=probs)
                chosen = distribution.sample()
                log_prob = log_prob + distribution.log_prob(chosen).sum()
                entropy = entropy + distribution.entropy().sum()
                target = torch.full_like(probs, self.skip_target)
                skip_penalty = skip_penalty + (
                    probs * torch.log(probs / target) + (1 - probs) * torch.log((1 - probs) / (1 - target))
                ).sum()
                picked = [i for i, flag in enumerate(chosen.tolist()) if flag]
                sample[field.label] = [field.values[i] for i in picked]
                inputs = ((chosen @ embedding) / (1.0 + chosen.sum())).unsqueeze(0)
            else:
                mask = torch.zeros(field.size, dtype=torch.bool, device=device)
                picked = []
                for _ in range(field.n_chosen):
                    distribution = torch.distributions.Categorical(logits=logits.masked_fill(mask, float("-inf")))
                    chosen = distribution.sample()
                    log_prob = log_prob + distribution.log_prob(chosen)
                    entropy = entropy + distribution.entropy()
                    mask = mask.clone()
                    mask[chosen] = True
                    picked.append(int(chosen))
                sample[field.label] = [field.values[i] for i in sorted(picked)]
                inputs = embedding[sorted(picked)].mean(0, keepdim=True) if picked else self.g_emb
        if self.entropy_reduction == "mean":
            entropy = entropy / len(self.fields)
        return ControllerSample(sample, log_prob, entropy, skip_penalty)

    def probabilities(self) -> dict[str, list[float]]:
        """Greedy decoding's per-decision probabilities (for logging)."""
        with torch.no_grad():
            inputs = self.g_emb
            state = None
            result = {}
            for index, field in enumerate(self.fields):
                output, state = self.lstm(inputs.unsqueeze(0), state)
                logits = self._logits(index, output.squeeze(0))
                probs = torch.sigmoid(logits) if field.multiple and field.n_chosen is None else F.softmax(logits, -1)
                result[field.label] = probs.tolist()
                top = int(probs.argmax())
                inputs = self.embedding[index].weight[top].unsqueeze(0)
        return result
