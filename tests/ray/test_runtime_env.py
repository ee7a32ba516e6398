"""The user's code reaches the actors through ``runtime_env.working_dir`` when the engine makes the connection.

No ``ray.init`` in this module: the engine starts its own local cluster (127.0.0.1) with the runtime
environment for the whole job, so Ray uploads the local directory; this process's ``sys.path`` is not
shipped, so the evaluator's module is nowhere else the actors could import it from.
"""

from __future__ import annotations

import importlib
import time
import uuid

from nascore.engine import EngineContext, TrialResources, TrialStatus, TrialSubmission
from nascore.evaluators import FunctionalEvaluator
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore_ray import RayEngine, RayOptions

from .conftest import ray  # noqa: F401 - skips this module where Ray is not installed


def test_a_working_dir_runtime_env_brings_the_users_code(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    name = f"wdjob_{uuid.uuid4().hex[:8]}"
    (code / f"{name}.py").write_text(
        f"import os\n\n\ndef where(model):\n    return 42.0 if os.path.exists({name + '.py'!r}) else -1.0\n"
    )
    monkeypatch.syspath_prepend(str(code))
    module = importlib.import_module(name)
    evaluator = FunctionalEvaluator(module.where)
    engine = RayEngine(RayOptions(runtime_env={"working_dir": str(code)}, ship_sys_path=False))
    space = DictSpace([Categorical([1, 2], label="x")])
    sink = RecordingSink()
    engine.check(evaluator, space)
    engine.start(EngineContext("ray-env-test", tmp_path / "exp", TrialResources(trial_concurrency=1), sink, space))
    try:
        model = space.freeze({"x": 1})
        engine.submit(TrialSubmission(1, model, evaluator, tmp_path / "exp" / "trials" / "1", model.sample))
        limit = time.monotonic() + 180
        while engine.running():
            assert time.monotonic() < limit, f"the trial did not end in time: {sink.events}"
            engine.wait(0.5)
    finally:
        engine.shutdown()
    end = sink.end(1)
    assert end.status is TrialStatus.SUCCEEDED, end.error
    # The trial ran in the unpacked working directory (the actor's current directory), which holds the module.
    assert next(e.value for e in sink.of(1) if e.kind == "final") == 42.0
