"""The logical plan and the dedup-input optimizer: which models share a trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascore.engine import TrialSubmission
from nascore.plugin import get_plugins
from nascore_cgo import DedupInputOptimizer, LogicalPlan


class Keyed:
    """An evaluator stand-in whose merge key is given."""

    def __init__(self, key):
        self.key = key

    def merge_key(self):
        return self.key


class Plain:
    """An evaluator that cannot train merged models (no merge_key)."""


def plan(evaluators, size=4):
    submissions = [TrialSubmission(i + 1, None, e, Path(".")) for i, e in enumerate(evaluators)]
    return LogicalPlan(submissions, size)


def test_a_new_plan_merges_nothing():
    assert plan([Keyed(1), Keyed(1)]).groups == [[0], [1]]


def test_dedup_input_groups_models_with_the_same_data_pipeline():
    shared, other = Keyed("a"), Keyed("b")
    result = DedupInputOptimizer().convert(plan([shared, other, Keyed("a"), shared, Plain()]))
    result.check()
    assert result.groups == [[0, 2, 3], [1], [4]]


def test_dedup_input_respects_max_concurrency_cgo():
    result = DedupInputOptimizer().convert(plan([Keyed("a")] * 5, size=2))
    result.check()
    assert result.groups == [[0, 1], [2, 3], [4]]


def test_a_plan_that_loses_or_repeats_a_model_is_rejected():
    bad = plan([Keyed(1), Keyed(1)])
    bad.groups = [[0, 0]]
    with pytest.raises(ValueError, match="exactly once"):
        bad.check()
    bad.groups = [[0, 1]]
    bad.max_group_size = 1
    with pytest.raises(ValueError, match="max_concurrency_cgo=1"):
        bad.check()


def test_the_plugin_registers_engine_and_optimizer():
    plugins = get_plugins()
    assert plugins.engines.get("cgo").name == "cgo"
    assert plugins.optimizers.get("dedup-input") is DedupInputOptimizer


def test_a_merged_model_ships_as_data_in_format_cgo_merged(job, graph_models):
    """What crosses to the worker is JSON (the members' graph payloads), not a pickle."""
    import json

    import torch

    from nascore.serialization import load_shipped_model, ship_model
    from nascore_cgo import MergedFormat, MergedModel

    models = graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}])
    merged = MergedModel([ship_model(m) for m in models], [5, 6], placement="spread")
    shipment = ship_model(merged)
    assert shipment["kind"] == "payload" and shipment["payload"]["format"] == "cgo-merged"
    assert all(member["kind"] == "payload" and member["payload"]["format"] == "graph"
               for member in shipment["payload"]["members"])
    loaded = load_shipped_model(json.loads(json.dumps(shipment)))
    assert isinstance(loaded, MergedModel) and loaded.trial_ids == [5, 6] and loaded.placement == "spread"
    x = torch.randn(3, 6)  # the job's inputs have 6 features
    for original, member in zip(models, loaded.members()):
        assert member.sample == original.sample
        torch.manual_seed(0)
        a = original.build()
        torch.manual_seed(0)
        b = member.build()
        torch.testing.assert_close(a(x), b(x))  # the same architecture, the same initialization
    assert get_plugins().formats.get("cgo-merged") is MergedFormat


def test_format_cgo_merged_is_not_a_format_for_spaces_and_refuses_bad_payloads(job):
    from nascore.errors import ConfigError, ShippingError
    from nascore_cgo import MergedFormat

    with pytest.raises(ConfigError, match=r"not a format for model spaces: set format = \"graph\""):
        MergedFormat().build(job.Space())
    with pytest.raises(ShippingError, match="'members'.*'trial_ids' of the same length"):
        MergedFormat().load_model({"format": "cgo-merged", "members": [{}], "trial_ids": [1, 2]})


def test_iterating_a_merged_models_members_builds_each_from_its_own_trials_seed(job, graph_models):
    """Each member starts as its own trial would; afterwards the random state is the first member's own trial's."""
    import random

    import numpy
    import torch

    from nascore.serialization import load_shipped_model, ship_model
    from nascore.trial import seed_everything
    from nascore_cgo import MergedModel

    samples = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 4, "act": "tanh"}]
    models = graph_models(job.Space(), samples)
    seeds = [11, 22, 33]

    def draws():
        return torch.rand(2).tolist(), random.random(), numpy.random.rand()

    alone, first_draws = [], None
    for model, seed in zip(models, seeds):  # each model in a trial of its own
        seed_everything(seed)
        alone.append(model.build().state_dict())
        first_draws = first_draws or draws()
    merged = load_shipped_model(ship_model(MergedModel([ship_model(m) for m in models], [1, 2, 3], seeds=seeds)))
    assert merged.seeds == seeds
    for build in (lambda: [member.build() for member in merged.members()], lambda: list(merged.build())):
        seed_everything(999)
        modules = build()
        assert draws() == first_draws  # the merged training runs from where the first member's trial would
        for module, expected in zip(modules, alone, strict=True):
            for name, tensor in module.state_dict().items():
                torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0)


def test_a_merged_model_without_seeds_touches_no_random_state(job, graph_models):
    import torch

    from nascore.serialization import ship_model
    from nascore_cgo import MergedModel

    models = graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}])
    merged = MergedModel([ship_model(m) for m in models], [1, 2])
    assert merged.to_payload()["seeds"] == [None, None]
    torch.manual_seed(3)
    torch.rand(1)
    expected = torch.get_rng_state()
    members = merged.members()
    assert len(members) == 2 and members[1].sample == models[1].sample
    list(iter(members))
    assert torch.equal(torch.get_rng_state(), expected)


def test_format_cgo_merged_refuses_seeds_that_do_not_fit(job):
    from nascore.errors import ShippingError
    from nascore_cgo import MergedFormat

    payload = {"format": "cgo-merged", "members": [{}, {}], "trial_ids": [1, 2]}
    assert MergedFormat().load_model(payload).seeds == [None, None]  # a payload of an older nascore-cgo
    for seeds in ([1], [1, "2"], [1, True], "12"):
        with pytest.raises(ShippingError, match="'seeds' must be one whole number"):
            MergedFormat().load_model({**payload, "seeds": seeds})
