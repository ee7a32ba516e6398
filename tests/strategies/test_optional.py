"""Without the extras (hyperopt, tianshou) the plugin still imports and registers every strategy;
using TPE or RL then fails with the ``pip install`` line to run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

WITHOUT_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Uninstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("hyperopt", "tianshou", "gymnasium"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Uninstalled())
    from nascore.errors import MissingDependencyError
    from nascore.plugin import get_plugins
    from nascore.space import Categorical
    from nascore.testing.fakes import DictSpace
    from nascore_strategies import TPE, PolicyBasedRL, RegularizedEvolution

    errors = {}
    for name in ("tpe", "rl"):
        strategy = get_plugins().strategies.get(name)()
        try:
            strategy.setup(DictSpace([Categorical([1, 2], label="a")]))
        except MissingDependencyError as exc:
            errors[name] = str(exc)
    RegularizedEvolution().setup(DictSpace([Categorical([1, 2], label="a")]))  # needs neither
    print(json.dumps({"names": get_plugins().strategies.names(), "errors": errors,
                      "loaded": sorted(m for m in ("hyperopt", "tianshou") if m in sys.modules)}))
    """
)


def test_the_strategies_import_without_their_extras_and_say_what_to_install():
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"random", "grid", "evolution", "tpe", "rl"} <= set(out["names"])
    assert out["loaded"] == []
    assert 'pip install "nascore-strategies[tpe]"' in out["errors"]["tpe"] and "hyperopt" in out["errors"]["tpe"]
    assert 'pip install "nascore-strategies[rl]"' in out["errors"]["rl"] and "tianshou" in out["errors"]["rl"]
