"""The logical plan and the dedup-input optimizer: which models share a trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascore.engine import TrialSubmission
from nascore.evaluator import Evaluator
from nascore.plugin import get_plugins
from nascore_cgo import DedupInputOptimizer, LogicalPlan


class Keyed(Evaluator):
    """An evaluator whose merge key is given."""

    def __init__(self, key):
        self.key = key

    def merge_key(self):
        return self.key

    def evaluate_module(self, module):
        return 1.0


class Plain(Evaluator):
    """An evaluator that cannot train merged models (the contract's merge_key: None)."""

    def evaluate_module(self, module):
        return 1.0


def plan(evaluators, size=4):
    submissions = [TrialSubmission(i + 1, None, e, Path(".")) for i, e in enumerate(evaluators)]
    return LogicalPlan(submissions, size)


def test_a_new_plan_merges_nothing():
    new = plan([Keyed(1), Keyed(1)])
    assert new.groups == [[0], [1]] and new.shared_inputs == [False, False]


def test_a_plan_needs_one_shared_inputs_flag_per_group():
    with pytest.raises(ValueError, match="2 groups but 1 shared_inputs flags"):
        LogicalPlan(plan([Keyed(1), Keyed(1)]).submissions, 4, [[0], [1]], [True]).check()


def test_dedup_input_groups_models_with_the_same_data_pipeline():
    shared, other = Keyed("a"), Keyed("b")
    result = DedupInputOptimizer().convert(plan([shared, other, Keyed("a"), shared, Plain()]))
    result.check()
    assert result.groups == [[0, 2, 3], [1], [4]]
    assert result.shared_inputs == [True, True, False]  # its groups read one data pipeline: one input


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


def test_a_model_group_ships_as_data_with_no_format_of_its_own(job, graph_models):
    """What crosses to the worker is JSON (each member's graph payload, trial ids, seeds), not a pickle."""
    import json

    import torch

    from nascore.group import ModelGroup
    from nascore.serialization import load_shipped_model, ship_model

    models = graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}])
    group = ModelGroup(models, [5, 6], [None, 3], settings={"placement": "spread"})
    shipment = ship_model(group)
    assert shipment["kind"] == "group" and shipment["trial_ids"] == [5, 6] and shipment["seeds"] == [None, 3]
    assert all(member["kind"] == "payload" and member["payload"]["format"] == "graph" for member in shipment["members"])
    loaded = load_shipped_model(json.loads(json.dumps(shipment)))
    assert isinstance(loaded, ModelGroup) and loaded.trial_ids == [5, 6] and loaded.settings == {"placement": "spread"}
    x = torch.randn(3, 6)  # the job's inputs have 6 features
    for original, member in zip(models, loaded.members[:]):
        assert member.sample == original.sample
        torch.manual_seed(0)
        a = original.build()
        torch.manual_seed(0)
        b = member.build()
        torch.testing.assert_close(a(x), b(x))  # the same architecture, the same initialization
    assert "cgo-merged" not in get_plugins().formats  # no pseudo-format


def test_a_malformed_group_shipment_is_a_clear_error():
    from nascore.errors import ShippingError
    from nascore.serialization import load_shipped_model

    with pytest.raises(ShippingError, match="a shipped model group is malformed"):
        load_shipped_model({"kind": "group", "members": [], "trial_ids": [1]})


def test_iterating_a_groups_members_builds_each_from_its_own_trials_seed(job, graph_models):
    """Each member starts as its own trial would; afterwards the random state is the first member's own trial's."""
    import random

    import numpy
    import torch

    from nascore.group import ModelGroup
    from nascore.serialization import load_shipped_model, ship_model
    from nascore.trial import seed_everything

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
    group = load_shipped_model(ship_model(ModelGroup(models, [1, 2, 3], seeds)))
    assert group.seeds == seeds
    for build in (lambda: [member.build() for member in group.members], lambda: list(group.build())):
        seed_everything(999)
        modules = build()
        assert draws() == first_draws  # the merged training runs from where the first member's trial would
        for module, expected in zip(modules, alone, strict=True):
            for name, tensor in module.state_dict().items():
                torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0)


def test_a_group_without_seeds_touches_no_random_state(job, graph_models):
    import torch

    from nascore.group import ModelGroup

    models = graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}])
    group = ModelGroup(models, [1, 2])
    assert group.seeds == [None, None]
    torch.manual_seed(3)
    torch.rand(1)
    expected = torch.get_rng_state()
    members = group.members
    assert len(members) == 2 and members[1].sample == models[1].sample
    list(iter(members))
    assert torch.equal(torch.get_rng_state(), expected)


def test_a_group_needs_one_trial_and_seed_per_member(job, graph_models):
    from nascore.group import ModelGroup

    models = graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}])
    with pytest.raises(ValueError, match="one trial id and one seed per member"):
        ModelGroup(models, [1])
    with pytest.raises(ValueError, match="one trial id and one seed per member"):
        ModelGroup(models, [1, 2], [1])


