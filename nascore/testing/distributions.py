"""Write real installed-looking distributions to a folder, for testing plugin discovery.

:func:`make_distribution` creates ``<name>-<version>.dist-info`` (``METADATA``,
``entry_points.txt``, ``RECORD``) and the distribution's modules under one root folder. Put that
folder on ``sys.path`` (or ``PYTHONPATH`` of a subprocess) and ``importlib.metadata`` finds the
distribution exactly as if pip had installed it; no pip, no network.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path


def make_distribution(
    root: Path,
    name: str,
    version: str,
    modules: Mapping[str, str],
    entry_points: Mapping[str, str],
    *,
    group: str = "nascore",
) -> Path:
    """Write a distribution with its modules and entry points under ``root``.

    :param root: the folder to write into (the future ``sys.path`` entry); created if missing.
    :param name: the distribution name as written in ``METADATA`` (``"good-plugin"``).
    :param version: its version (``"0.1"``).
    :param modules: dotted module name -> source (dedented). ``"pkg.mod"`` writes
        ``pkg/mod.py`` and an empty ``pkg/__init__.py`` unless ``"pkg"`` is given too.
    :param entry_points: entry-point name -> object reference (``"good_plugin"`` or
        ``"pkg.mod:attr"``), all in ``group``.
    :param group: the entry-point group.
    :returns: the path of the ``.dist-info`` folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    packages = {module.rsplit(".", 1)[0] for module in modules if "." in module}
    packages |= {
        ".".join(package.split(".")[:i]) for package in packages for i in range(1, package.count(".") + 1)
    }
    written: list[Path] = []

    def module_path(module: str) -> Path:
        parts = module.split(".")
        if module in packages:
            return root.joinpath(*parts, "__init__.py")
        return root.joinpath(*parts[:-1], parts[-1] + ".py")

    for package in sorted(packages - set(modules)):
        path = module_path(package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        written.append(path)
    for module, source in modules.items():
        path = module_path(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        written.append(path)

    escaped = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = root / f"{escaped}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"[{group}]", *(f"{key} = {value}" for key, value in entry_points.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    written += [dist_info / "METADATA", dist_info / "entry_points.txt", dist_info / "RECORD"]
    record = "".join(f"{path.relative_to(root).as_posix()},,\n" for path in written)
    (dist_info / "RECORD").write_text(record, encoding="utf-8")
    importlib.invalidate_caches()
    return dist_info
