"""Policy-based reinforcement learning: a tianshou 2.x policy learns which samples score well.

Needs ``tianshou`` (``pip install "nascore-strategies[rl]"``); importing this module does not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from nascore.errors import StrategyError
from nascore.format import ExecutableSpace
from nascore.record import TrialRecord
from nascore.space import Numerical, Sample, sample_key
from nascore.strategy import ModelFilter, MultiTrialStrategy
from nascore_strategies._optional import require

__all__ = ["PolicyBasedRL", "default_policy_fn", "reinforce_policy_fn"]

_log = logging.getLogger(__name__)

#: Proposals in a row that give an invalid sample before the policy is considered stuck.
INVALID_PATIENCE = 50
#: Draws of already-tried samples per proposal before the proposal is left to deduplication.
MAX_MISSES = 40

PolicyFactory = Callable[[Any], Any]


def _impl() -> ModuleType:
    require("tianshou", extra="rl", strategy="rl")
    from nascore_strategies import _rl_impl

    return _rl_impl


def default_policy_fn(env: Any, **kwargs: Any) -> Any:
    """PPO (the default): ``functools.partial(default_policy_fn, lr=1e-3, hidden_sizes=(128,))`` to tune it."""
    return _impl().default_policy_fn(env, **kwargs)


def reinforce_policy_fn(env: Any, **kwargs: Any) -> Any:
    """REINFORCE (vanilla policy gradient, as in Zoph & Le 2017): ``PolicyBasedRL(policy_fn=reinforce_policy_fn)``."""
    return _impl().reinforce_policy_fn(env, **kwargs)


class PolicyBasedRL(MultiTrialStrategy):
    """Policy-based reinforcement learning on tianshou 2.x (registered as ``rl``); PPO by default.

    A sample is an episode: one step per decision, the observation is what was chosen so far, and
    the reward, given at the last step, is the trial's metric (negated when minimizing). After
    every ``trial_per_collect`` finished episodes the policy is updated on them; after
    ``max_collect`` updates the search ends.

    Priors of the space (``Categorical(..., weights=...)``, a bounded ``Numerical`` with a normal or
    other distribution) tilt the policy when it draws: each step's action is drawn from the policy's
    logits plus the log prior, so an untrained policy follows the prior. In a conditional space the
    steps of decisions a sample does not use are taken but do not change the architecture (two
    episodes that differ only there are the same sample for deduplication).

    Invalid samples are handled: a sample the policy builds that is not in the space (a candidate
    of a multiple choice picked twice, an action out of range from a custom policy), and a model
    that ``model_filter`` rejects, get ``reward_for_invalid`` (or are dropped when it is ``None``)
    and another sample is drawn. With ``dedup``, a sample that was already evaluated is not run
    again: its episode gets the known metric, so the policy still learns from it, and the policy
    draws again with flatter probabilities (temperature doubling every two misses), so that a
    converged policy explores around what it prefers instead of ending the search.

    :param max_collect: how many policy updates ("collects") before the search ends. Default: 100.
    :param trial_per_collect: episodes (trials, and re-proposed known samples) per update. Default: 20.
    :param policy_fn: ``f(env) -> tianshou on-policy algorithm`` (``PPO``, ``Reinforce``, ...), where
        ``env`` is a :class:`~nascore_strategies._rl_impl.DecisionEnv` (a gymnasium environment with
        the observation and action spaces). Default: :func:`default_policy_fn` (PPO);
        :func:`reinforce_policy_fn` gives REINFORCE.
    :param reward_for_invalid: the reward of an invalid or filtered sample, and of a failed trial
        with ``on_failure="worst"`` (default there: the worst reward seen so far).
    :param update_kwargs: arguments of ``algorithm.update`` (``batch_size``, ``repeat``) and
        ``update_times``. Default: ``{"batch_size": 64, "repeat": 4, "update_times": 1}``.
    :param granularity: grid points of a bounded numerical decision (RL needs finite actions).
    :param dedup: never run the same sample twice. Default: true.
    :param model_filter: ``f(model) -> bool``; models it rejects are never submitted.
    :param on_failure: ``"ignore"`` drops the episode of a failed trial; ``"worst"`` gives it the
        worst reward.
    :param seed: seed of the policy's initialization and sampling (defaults to the experiment's).
    :param retries: run a failed trial again up to this many times before ``on_failure`` applies.
    :param repeats: evaluate every sample this many times; the reward is the mean.

    An unbounded numerical decision cannot be searched: such a space is refused before the first trial.
    The policy's weights and optimizer state are saved as JSON in the strategy state (base64
    tensors), so a resumed experiment continues with the same policy.
    """

    name = "rl"

    def __init__(
        self,
        *,
        max_collect: int = 100,
        trial_per_collect: int = 20,
        policy_fn: PolicyFactory | None = None,
        reward_for_invalid: float | None = None,
        update_kwargs: dict[str, Any] | None = None,
        granularity: int = 5,
        dedup: bool = True,
        model_filter: ModelFilter | None = None,
        on_failure: str = "ignore",
        seed: int | None = None,
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        super().__init__(
            seed=seed, dedup=dedup, model_filter=model_filter, on_failure=on_failure, retries=retries, repeats=repeats
        )
        if not isinstance(max_collect, int) or max_collect < 1:
            raise StrategyError(f"max_collect must be a positive int, got {max_collect!r}")
        if not isinstance(trial_per_collect, int) or trial_per_collect < 1:
            raise StrategyError(f"trial_per_collect must be a positive int, got {trial_per_collect!r}")
        if policy_fn is not None and not callable(policy_fn):
            raise StrategyError(f"policy_fn must be a function env -> tianshou algorithm, got {policy_fn!r}")
        self.max_collect = max_collect
        self.trial_per_collect = trial_per_collect
        self.policy_fn = policy_fn
        self.reward_for_invalid = None if reward_for_invalid is None else float(reward_for_invalid)
        self.update_kwargs = {"batch_size": 64, "repeat": 4, **(update_kwargs or {})}
        self.granularity = granularity
        self.algorithm: Any = None
        self.env: Any = None
        self._impl: ModuleType | None = None
        self._torch_seed = 0
        self._updates = 0
        self._episodes: list[tuple[list[int], float]] = []
        self._rewards: dict[str, float] = {}
        self._weights: dict[str, Any] | None = None

    # --- set-up ---------------------------------------------------------------------------------

    def check_space(self, space: ExecutableSpace) -> None:
        decisions = space.simplify()
        if not decisions:
            raise StrategyError("the rl strategy needs a space with at least one decision")
        for label, mutable in decisions.items():
            if isinstance(mutable, Numerical) and not mutable.bounded:
                raise StrategyError(
                    f"the rl strategy cannot search the unbounded numerical decision {label!r} "
                    f"({mutable.describe()}): its actions must be finite. Give the decision low and high "
                    "bounds (it is then searched on a grid of `granularity` points), or use 'tpe' or 'evolution'"
                )

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        self._impl = _impl()
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        self.env = self._impl.DecisionEnv(space.simplify(), granularity=self.granularity)
        self._torch_seed = self.rng.getrandbits(63)
        with self._impl.isolated_rng(self._torch_seed):
            self.algorithm = (self.policy_fn or self._impl.default_policy_fn)(self.env)
        if not (hasattr(self.algorithm, "policy") and hasattr(self.algorithm, "update")):
            raise StrategyError(
                f"policy_fn returned {type(self.algorithm).__name__}, not a tianshou algorithm "
                "(an object with .policy and .update, e.g. tianshou.algorithm.PPO or Reinforce)"
            )
        self._updates = 0
        self._episodes = []
        self._rewards = {}
        self._weights = None

    # --- proposing ------------------------------------------------------------------------------

    def propose(self) -> Sample | None:
        assert self._impl is not None and self.space is not None
        if self._updates >= self.max_collect:
            _log.info("PolicyBasedRL: %d collects done; the search ends", self.max_collect)
            return None
        invalid = misses = 0
        while True:
            temperature = 2.0 ** (misses / 2)
            actions = self._impl.sample_actions(self.algorithm, self.env, self.rng.getrandbits(63), temperature)
            sample = self.env.decode(actions)
            if sample is None or not self.space.contains(sample):
                _log.debug("PolicyBasedRL: the policy built an invalid sample (actions %s)", actions)
                if self.reward_for_invalid is not None:
                    self._add_episode(actions, self.reward_for_invalid)
                invalid += 1
                if invalid >= INVALID_PATIENCE:
                    _log.warning("PolicyBasedRL: %d invalid samples in a row; the search ends", INVALID_PATIENCE)
                    return None
                continue
            if misses < MAX_MISSES and self.is_known(sample):
                # Already tried: the policy learns its known reward once, then draws again with
                # flatter probabilities (temperature doubling every two misses) to explore.
                if misses == 0:
                    self._learn_known(sample, actions)
                misses += 1
                continue
            return sample

    def rejected(self, sample: Sample, reason: str) -> None:
        actions = self.env.encode(sample)
        if actions is None:
            return
        if reason == "duplicate":
            self._learn_known(sample, actions)
        elif self.reward_for_invalid is not None:
            self._add_episode(actions, self.reward_for_invalid)

    def _learn_known(self, sample: Sample, actions: list[int]) -> None:
        """An episode for a sample evaluated before: it gets the known reward, without a trial."""
        assert self.space is not None
        known = self._rewards.get(sample_key(self.space.canonical_sample(sample)))
        if known is not None:
            self._add_episode(actions, known)

    # --- learning -------------------------------------------------------------------------------

    def _reward(self, trial: TrialRecord) -> float | None:
        value = self.objective(trial)
        if value is None or value != float("-inf"):
            return value
        if self.reward_for_invalid is not None:
            return self.reward_for_invalid
        return min(self._rewards.values(), default=0.0)

    def learn(self, trial: TrialRecord) -> None:
        reward = self._remember(trial)
        actions = self.env.encode(trial.sample)
        if reward is not None and actions is not None:
            self._add_episode(actions, reward)

    def replay(self, trial: TrialRecord) -> None:
        # Already in the saved weights or episodes: only remember its reward for known samples.
        self._remember(trial)

    def _remember(self, trial: TrialRecord) -> float | None:
        reward = self._reward(trial)
        if reward is not None:
            self._rewards[sample_key(trial.sample)] = reward
        return reward

    def _add_episode(self, actions: list[int], reward: float) -> None:
        assert self._impl is not None
        if not math.isfinite(reward):
            _log.debug("PolicyBasedRL: episode with a non-finite reward %r dropped", reward)
            return
        self._episodes.append((list(actions), float(reward)))
        if len(self._episodes) >= self.trial_per_collect and self._updates < self.max_collect:
            seed = (self._torch_seed + 7919 * (self._updates + 1)) % 2**63
            self._impl.train(self.algorithm, self.env, self._episodes, seed, self.update_kwargs)
            self._updates += 1
            self._episodes = []
            self._weights = None
            _log.debug("PolicyBasedRL: policy update %d/%d", self._updates, self.max_collect)

    @property
    def updates(self) -> int:
        """Policy updates done so far."""
        return self._updates

    # --- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        assert self._impl is not None
        if self._weights is None:  # encoded once per update, reused by every submit until the next one
            self._weights = self._impl.encode_state(self.algorithm.state_dict())
        return {
            **super().state_dict(),
            "torch_seed": self._torch_seed,
            "updates": self._updates,
            "episodes": [[actions, reward] for actions, reward in self._episodes],
            "weights": self._weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self._impl is not None
        super().load_state_dict(state)
        self._torch_seed = int(state.get("torch_seed", self._torch_seed))
        self._updates = int(state.get("updates", 0))
        self._episodes = [(list(actions), float(reward)) for actions, reward in state.get("episodes", [])]
        if state.get("weights") is not None:
            self.algorithm.load_state_dict(self._impl.decode_state(state["weights"]))
            self._weights = state["weights"]
