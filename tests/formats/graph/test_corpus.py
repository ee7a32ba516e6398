"""The corpus: for every space, 20 random samples in the graph format match the simplified format.

For each sample the graph model's code is generated, executed on its own, loaded with the weights
of the model the simplified format builds for the same sample (same ``state_dict`` keys), and its
output must match within 1e-5. The model also survives a JSON round trip unchanged.
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from nascore_formats import GraphFormat, SimplifiedFormat

from .corpus import CORPUS, CorpusEntry
from .helpers import exec_code

SAMPLES = 20


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_graph_models_match_the_simplified_format(entry: CorpusEntry) -> None:
    graph_space = GraphFormat().build(entry.space())
    simplified_space = SimplifiedFormat().build(entry.simplified_space())
    assert set(graph_space.simplify()) == set(simplified_space.simplify())
    rng = random.Random(f"corpus-{entry.name}")
    seen = set()
    for index in range(SAMPLES):
        sample = graph_space.random_sample(random_state=rng)
        seen.add(json.dumps(sample, sort_keys=True))
        model = graph_space.freeze(sample)
        code = model.to_code()
        assert "import nascore" not in code and "from nascore" not in code, "the generated code runs without nascore"
        generated = exec_code(code)

        shipped = GraphFormat().load_model(json.loads(json.dumps(model.to_payload())))
        assert shipped.sample == model.sample and shipped.to_code() == code

        reference = simplified_space.freeze(sample).build()
        generated.load_state_dict(reference.state_dict())  # strict: the same keys and shapes
        generated.eval()
        reference.eval()
        torch.manual_seed(index)
        inputs = entry.inputs()
        with torch.no_grad():
            expected = reference(*inputs)
            assert torch.allclose(generated(*inputs), expected, atol=1e-5), f"sample {sample}"
            rebuilt = shipped.build()  # what a trial worker runs
            rebuilt.load_state_dict(reference.state_dict())
            assert torch.allclose(rebuilt.eval()(*inputs), expected, atol=1e-5)
    assert len(seen) > SAMPLES // 2, "the samples explore the space"
