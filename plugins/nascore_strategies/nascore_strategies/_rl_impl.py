"""The tianshou side of :class:`~nascore_strategies.rl.PolicyBasedRL` (imported only when it is used).

A sample is an episode: one step per decision (a multiple choice is one yes/no step per candidate,
or ``n_chosen`` picks), the observation is what was chosen so far and which step comes next, and
the only reward is the trial's metric at the last step. :class:`DecisionEnv` is that episode as a
gymnasium environment; the policies here are tianshou 2.x algorithms (PPO by default, REINFORCE).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from tianshou.algorithm import PPO, Reinforce
from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Batch, ReplayBuffer
from tianshou.utils.net.common import AbstractDiscreteActor
from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode

from nascore.errors import StrategyError
from nascore.space import Categorical, CategoricalMultiple, LabelledMutable, Numerical, Sample

__all__ = [
    "DecisionEnv",
    "MaskedActor",
    "default_policy_fn",
    "reinforce_policy_fn",
    "sample_actions",
    "train",
    "encode_state",
    "decode_state",
    "isolated_rng",
]

_MASKED = -1.0e9

logger = logging.getLogger("nascore_strategies.rl")


class _Step:
    """One step of the episode: which decision it fills and how many actions it has."""

    def __init__(self, label: str, kind: str, choices: int, index: int = 0) -> None:
        self.label, self.kind, self.choices, self.index = label, kind, choices, index


class DecisionEnv(gym.Env):
    """The decisions of a space as an episode, one step per decision (a gymnasium environment).

    ``observation_space``: a 0/1 vector, the one-hot action of every step taken so far followed by
    the one-hot index of the current step. ``action_space``: ``Discrete(max choices)``; at a step
    with fewer choices the extra actions are invalid (:attr:`action_mask` says which are valid; the
    default policies never take them). The reward is 0: :class:`PolicyBasedRL` gives the trial's
    metric at the last step.

    :param space: ``{label: decision}`` (``space.simplify()``).
    :param granularity: grid points of a bounded numerical decision.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, space: dict[str, LabelledMutable], granularity: int = 5) -> None:
        super().__init__()
        self.decisions = dict(space)
        self.steps: list[_Step] = []
        self.values: dict[str, list[Any]] = {}
        for label, mutable in space.items():
            if isinstance(mutable, Categorical):
                self.values[label] = list(mutable.values)
                self.steps.append(_Step(label, "choice", len(mutable.values)))
            elif isinstance(mutable, CategoricalMultiple):
                self.values[label] = list(mutable.values)
                n = len(mutable.values)
                if mutable.n_chosen is None:
                    self.steps += [_Step(label, "bit", 2, j) for j in range(n)]
                else:
                    self.steps += [_Step(label, "pick", n, j) for j in range(mutable.n_chosen)]
            elif isinstance(mutable, Numerical) and mutable.bounded:
                self.values[label] = list(mutable.grid_values(granularity))
                self.steps.append(_Step(label, "number", len(self.values[label])))
            else:
                raise StrategyError(
                    f"reinforcement learning needs a finite set of actions; decision {label!r} "
                    f"({type(mutable).__name__}) has none: bound it, or use 'tpe' or 'evolution'"
                )
        self.num_steps = len(self.steps)
        self.num_choices = [max(step.choices, 1) for step in self.steps]
        self.max_choices = max(self.num_choices, default=1)
        self.obs_dim = self.num_steps * self.max_choices + self.num_steps + 1
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.max_choices)
        mask = np.zeros((self.num_steps + 1, self.max_choices), dtype=bool)
        for i, n in enumerate(self.num_choices):
            mask[i, :n] = True
        mask[self.num_steps, :] = True
        self.action_mask = mask
        self.log_prior = self._log_prior()
        self._actions: list[int] = []

    def _log_prior(self) -> np.ndarray | None:
        """Per step, the log of the decision's prior over the step's actions (``None`` without any prior).

        A weighted ``Categorical`` gives its weights; a bounded ``Numerical`` with a non-uniform
        distribution the mass of its distribution around each grid point.
        """
        table = np.zeros((self.num_steps + 1, self.max_choices), dtype=np.float64)
        found = False
        for i, step in enumerate(self.steps):
            mutable = self.decisions[step.label]
            masses: list[float] | None = None
            if step.kind == "choice" and getattr(mutable, "weighted", False):
                masses = list(mutable.weights)  # type: ignore[attr-defined]
            elif step.kind == "number" and mutable.distribution.name != "uniform":  # type: ignore[attr-defined]
                values = self.values[step.label]
                edges = [(a + b) / 2 for a, b in zip(values, values[1:])]
                cdf = [0.0, *(mutable.distribution.cdf(e) for e in edges), 1.0]  # type: ignore[attr-defined]
                masses = [max(hi - lo, 1e-12) for lo, hi in zip(cdf, cdf[1:])]
            if masses is None:
                continue
            total = sum(masses)
            table[i, : len(masses)] = np.log(np.asarray(masses) / total)
            found = True
        return table if found else None

    # --- encoding -------------------------------------------------------------------------------

    def observe(self, actions: Sequence[int]) -> np.ndarray:
        """The observation after taking ``actions`` (the first ``len(actions)`` steps)."""
        obs = np.zeros(self.obs_dim, dtype=np.float32)
        for step, action in enumerate(actions):
            obs[step * self.max_choices + action] = 1.0
        obs[self.num_steps * self.max_choices + len(actions)] = 1.0
        return obs

    def decode(self, actions: Sequence[int]) -> Sample | None:
        """The sample the actions stand for; ``None`` if they are invalid (out of range, a candidate picked twice)."""
        sample: Sample = {}
        chosen: dict[str, list[int]] = {}
        for step, action in zip(self.steps, actions):
            if not 0 <= action < step.choices:
                return None
            if step.kind in ("choice", "number"):
                sample[step.label] = self.values[step.label][action]
            elif step.kind == "bit":
                chosen.setdefault(step.label, [])
                if action == 1:
                    chosen[step.label].append(step.index)
            else:
                picks = chosen.setdefault(step.label, [])
                if action in picks:
                    return None
                picks.append(action)
        for label, indices in chosen.items():
            sample[label] = [self.values[label][j] for j in sorted(indices)]
        return sample

    def encode(self, sample: Sample) -> list[int] | None:
        """The actions that give ``sample`` (multiple picks in candidate order); ``None`` if it is not in the space."""
        actions: list[int] = []
        for step in self.steps:
            mutable = self.decisions[step.label]
            # A decision the sample leaves out (inactive in a conditional space) is encoded as its default.
            raw = sample[step.label] if step.label in sample else mutable.default_value()
            value = mutable.canonical_value(raw)
            if mutable.check_value(value) is not None:
                return None
            values = self.values[step.label]
            if step.kind == "choice":
                actions.append(mutable.index_of(value))  # type: ignore[attr-defined]
            elif step.kind == "number":
                actions.append(min(range(len(values)), key=lambda i: abs(values[i] - value)))
            else:
                positions = {id(candidate): j for j, candidate in enumerate(mutable.values)}  # type: ignore[attr-defined]
                indices = sorted(positions[id(candidate)] for candidate in value)
                if step.kind == "bit":
                    actions.append(int(step.index in indices))
                else:
                    actions.append(indices[step.index])
        return actions

    # --- the gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._actions = []
        return self.observe(self._actions), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if len(self._actions) >= self.num_steps:
            raise StrategyError("DecisionEnv.step() after the episode ended; call reset()")
        self._actions.append(int(action))
        done = len(self._actions) == self.num_steps
        info = {"sample": self.decode(self._actions)} if done else {}
        return self.observe(self._actions), 0.0, done, False, info


# --- networks and policies ------------------------------------------------------------------------


class MaskedActor(AbstractDiscreteActor):
    """An MLP from the observation to action logits; invalid actions of the current step are masked out.

    :param tanh_constant: logits are squashed to ``tanh_constant * tanh(logits / tanh_constant)``
        (as in the NAS controllers of Zoph & Le and ENAS): the policy never becomes fully
        deterministic, and the probability ratios of policy-gradient updates stay finite even for
        episodes the current policy would hardly take (known samples, exploration). ``None`` turns it off.
    """

    def __init__(self, env: DecisionEnv, hidden_sizes: Sequence[int] = (64, 64), tanh_constant: float | None = 2.5) -> None:
        super().__init__(env.max_choices)
        self.net = _mlp(env.obs_dim, hidden_sizes, env.max_choices)
        self.step_offset = env.num_steps * env.max_choices
        self.tanh_constant = tanh_constant
        self.register_buffer("mask", torch.as_tensor(env.action_mask))

    def get_preprocess_net(self) -> nn.Module:
        return nn.Identity()

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        logits = self.net(obs)
        if self.tanh_constant:
            logits = self.tanh_constant * torch.tanh(logits / self.tanh_constant)
        step = obs[:, self.step_offset :].argmax(-1)
        return logits.masked_fill(~self.mask[step], _MASKED), state


class _Critic(nn.Module):
    def __init__(self, env: DecisionEnv, hidden_sizes: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.net = _mlp(env.obs_dim, hidden_sizes, 1)

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> torch.Tensor:
        return self.net(torch.as_tensor(obs, dtype=torch.float32))


def _mlp(inputs: int, hidden: Sequence[int], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(inputs, size), nn.Tanh()]
        inputs = size
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


def default_policy_fn(
    env: DecisionEnv,
    lr: float = 3e-3,
    hidden_sizes: Sequence[int] = (64, 64),
    ent_coef: float = 0.01,
    tanh_constant: float | None = 2.5,
) -> PPO:
    """PPO with an MLP actor (masked, squashed logits) and critic, Monte-Carlo returns (gamma 1)."""
    policy = DiscreteActorPolicy(actor=MaskedActor(env, hidden_sizes, tanh_constant), action_space=env.action_space)
    return PPO(
        policy=policy,
        critic=_Critic(env, hidden_sizes),
        optim=AdamOptimizerFactory(lr=lr),
        gamma=1.0,
        gae_lambda=1.0,
        ent_coef=ent_coef,
        max_grad_norm=0.5,
    )


def reinforce_policy_fn(
    env: DecisionEnv, lr: float = 3e-3, hidden_sizes: Sequence[int] = (64, 64), tanh_constant: float | None = 2.5
) -> Reinforce:
    """REINFORCE (vanilla policy gradient, as in Zoph & Le 2017) with standardized returns."""
    policy = DiscreteActorPolicy(actor=MaskedActor(env, hidden_sizes, tanh_constant), action_space=env.action_space)
    return Reinforce(policy=policy, optim=AdamOptimizerFactory(lr=lr), gamma=1.0, return_standardization=True)


# --- running the policy ---------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators for a block, then put their states back.

    The block also runs torch on one thread: the policy's networks are tiny, and on a busy machine
    a second thread makes each operation an order of magnitude slower.
    """
    numpy_state = np.random.get_state()
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            np.random.set_state(numpy_state)


def sample_actions(algorithm: Any, env: DecisionEnv, seed: int, temperature: float = 1.0) -> list[int]:
    """One episode of the policy (no learning): the action of every step.

    With ``temperature > 1`` the actions are drawn from the policy's distribution with its logits
    divided by the temperature (flatter: more exploration). Where the space has priors
    (:attr:`DecisionEnv.log_prior`), the distribution is tilted by them: logits plus the log prior.
    """
    policy = algorithm.policy
    actions: list[int] = []
    with isolated_rng(seed), torch.no_grad(), torch_train_mode(policy, False):
        for step in range(env.num_steps):
            result = policy(Batch(obs=env.observe(actions)[None], info={}))
            dist = result.get("dist", None)
            tilt = env.log_prior is not None and bool(env.log_prior[step].any())
            if (temperature != 1.0 or tilt) and isinstance(dist, torch.distributions.Categorical):
                logits = dist.logits / temperature
                if tilt:
                    prior = torch.as_tensor(env.log_prior[step, : logits.shape[-1]], dtype=logits.dtype)
                    logits = logits + prior
                act = torch.distributions.Categorical(logits=logits).sample()
            else:
                act = result.act
            actions.append(int(np.asarray(policy.map_action(act)).reshape(-1)[0]))
    return actions


def train(
    algorithm: Any, env: DecisionEnv, episodes: list[tuple[list[int], float]], seed: int, update_kwargs: dict[str, Any]
) -> None:
    """One update of the algorithm on complete episodes (reward at the last step)."""
    kwargs = dict(update_kwargs)
    times = int(kwargs.pop("update_times", 1))
    buffer = ReplayBuffer(max(sum(len(actions) for actions, _ in episodes), 1))
    for actions, reward in episodes:
        for step, action in enumerate(actions):
            last = step == len(actions) - 1
            buffer.add(
                Batch(
                    obs=env.observe(actions[:step]),
                    act=action,
                    rew=float(reward) if last else 0.0,
                    terminated=last,
                    truncated=False,
                    obs_next=env.observe(actions[: step + 1]),
                    info={},
                )
            )
    before = copy.deepcopy(algorithm.state_dict())  # weights and optimizer state
    try:
        with (
            isolated_rng(seed),
            policy_within_training_step(algorithm.policy),
            torch_train_mode(algorithm),
            np.errstate(all="ignore"),  # overflowing statistics are caught below, as a diverged update
        ):
            for _ in range(times):
                algorithm.update(buffer, **kwargs)
        diverged = not all(torch.isfinite(p).all() for p in algorithm.parameters())
    except (ValueError, RuntimeError) as exc:  # torch refuses non-finite logits mid-update
        diverged = True
        logger.debug("PolicyBasedRL: the update failed: %s", exc)
    if diverged:
        # E.g. a custom policy without bounded logits, or huge rewards: keep the previous policy.
        algorithm.load_state_dict(before)
        logger.warning("PolicyBasedRL: a policy update diverged (non-finite weights) and was undone")


# --- state as JSON ----------------------------------------------------------------------------------


def encode_state(value: Any) -> Any:
    """``algorithm.state_dict()`` (tensors, optimizer state) as JSON-able data; tensors as base64 bytes."""
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().contiguous()
        return {
            "__tensor__": base64.b64encode(array.numpy().tobytes()).decode("ascii"),
            "dtype": str(array.dtype).removeprefix("torch."),
            "shape": list(array.shape),
        }
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: encode_state(item) for key, item in value.items()}
        return {"__items__": [[encode_state(key), encode_state(item)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(item) for item in value]}
    if isinstance(value, list):
        return [encode_state(item) for item in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    raise StrategyError(f"cannot save {type(value).__name__} in the RL strategy state: {value!r}")


def decode_state(value: Any) -> Any:
    """The inverse of :func:`encode_state`."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            dtype = getattr(torch, value["dtype"])
            raw = bytearray(base64.b64decode(value["__tensor__"]))
            return torch.frombuffer(raw, dtype=dtype).reshape(value["shape"]).clone() if raw else torch.zeros(
                value["shape"], dtype=dtype
            )
        if "__items__" in value:
            return {decode_state(key): decode_state(item) for key, item in value["__items__"]}
        if "__tuple__" in value:
            return tuple(decode_state(item) for item in value["__tuple__"])
        if "__float__" in value:
            return float(value["__float__"])
        return {key: decode_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_state(item) for item in value]
    return value
