"""The boundaries between distributions, checked statically over the source.

nascore (the core) and its plugin distributions (nascore_formats, nascore_engines,
nascore_strategies, nascore_cgo, nascore_hub, nascore_ray) may use each other's public names only:

1. no module of one distribution imports a private name (one starting with ``_``) of another,
   nor a module whose path has a private segment (``nascore.nn._foo``);
2. no distribution reads the private attributes of the core's nn primitives that have a public
   replacement (a textual check: attribute reads cannot be attributed statically in general);
3. the contract modules ``nascore/engine.py``, ``format.py`` and ``strategy.py`` import nothing
   from ``nascore.experiment``.

A module's distribution is its top-level package. Names private to one distribution
(``nascore_strategies._optional`` imported by ``nascore_strategies.rl``) are fine.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = ("nascore", "nascore_formats", "nascore_engines", "nascore_strategies", "nascore_cgo", "nascore_hub", "nascore_ray")

#: Private attributes (or functions) of the core's nn primitives -> the public name to use instead.
MADE_PUBLIC = {
    "_input_factories": "Cell.input_factories",
    "_build_op": "nascore.nn.cell.build_op",
    "_loose_ends": "nascore.nn.cell.loose_ends",
    "_nascore_trace": "ParametrizedModule.trace_args / trace_kwargs",
    "_nascore_mutables": "MutableModule.mutables",
    "_nascore_init_arguments": "ModelSpace.init_arguments",
    "_nascore_frozen_sample": "ModelSpace.sample",
    "_nascore_wraps": "ParametrizedModule.wrapped_layer()",
}
#: Reads of those names that files outside this change still make: ``(file, name) -> what to do``.
#: Fix the file, then remove the entry (a test checks that every entry still occurs).
KNOWN_PRIVATE_READS: dict[tuple[str, str], str] = {}
#: Private imports across distributions that files outside this change still make:
#: ``(file, imported name) -> what to do``. Fix the file, then remove the entry (a test checks
#: that every entry still occurs, so a stale one fails).
KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}


# --- the source files -----------------------------------------------------------------------------


def _package_roots() -> list[Path]:
    """The folders holding the top-level packages: the repository root and ``plugins/<dist>``."""
    return [ROOT, *sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir())]


def source_files() -> list[tuple[Path, str]]:
    """Every ``.py`` file of every distribution, with its distribution (its top-level package)."""
    return [(path, distribution) for path, distribution, _, _ in _modules()]


def _modules() -> list[tuple[Path, str, str, bool]]:
    """``(path, distribution, dotted module name, whether it is a package's __init__)`` of every file."""
    files = []
    for base in _package_roots():
        for package in DISTRIBUTIONS:
            top = base / package
            if not (top / "__init__.py").is_file():
                continue
            for path in sorted(top.rglob("*.py")):
                parts = path.relative_to(base).parts
                if any(part == "__pycache__" or part.endswith(".egg-info") for part in parts):
                    continue
                names = list(path.relative_to(base).with_suffix("").parts)
                is_package = names[-1] == "__init__"
                if is_package:
                    names.pop()
                files.append((path, package, ".".join(names), is_package))
    return files


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def is_private(name: str) -> bool:
    """``_x`` is private; ``__x__`` (``__version__``, ``__main__``) is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


# --- check 1: private imports across distributions ------------------------------------------------


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``tree`` (at any depth), relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            yield node.lineno, base, [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value, []


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def private_imports(
    source: str, distribution: str, module: str, is_package: bool = False, filename: str = "<source>"
) -> list[tuple[int, str]]:
    """``(line, private name)`` of every private name of another distribution that ``source`` imports."""
    found = []
    for line, imported, names in sorted(_imported_modules(ast.parse(source, filename), module, is_package)):
        segments = imported.split(".")
        if segments[0] not in DISTRIBUTIONS or segments[0] == distribution:
            continue
        private_segments = [s for s in segments if is_private(s)]
        if private_segments:
            found.append((line, imported))
            continue
        found.extend((line, f"{imported}.{name}") for name in names if is_private(name))
    return found


def test_the_source_files_of_every_distribution_are_found() -> None:
    found = {distribution for _, distribution in source_files()}
    assert found == set(DISTRIBUTIONS)


def _private_imports_across_distributions() -> list[tuple[str, int, str, str]]:
    """``(file, line, importing distribution, imported name)`` of every private import across distributions."""
    return [
        (relative(path), line, distribution, name)
        for path, distribution, module, is_package in _modules()
        for line, name in private_imports(path.read_text(encoding="utf-8"), distribution, module, is_package, relative(path))
    ]


def test_no_distribution_imports_a_private_name_of_another() -> None:
    offences = [
        f"{file}:{line}: {distribution} imports {name!r}, private to {name.split('.')[0]}"
        for file, line, distribution, name in _private_imports_across_distributions()
        if (file, name) not in KNOWN_PRIVATE_IMPORTS
    ]
    assert not offences, "private imports across distributions:\n" + "\n".join(offences)


def test_the_known_private_imports_are_still_there() -> None:
    found = {(file, name) for file, _, _, name in _private_imports_across_distributions()}
    stale = [f"{file}: {name!r}" for file, name in KNOWN_PRIVATE_IMPORTS if (file, name) not in found]
    assert not stale, "fixed, so remove from KNOWN_PRIVATE_IMPORTS:\n" + "\n".join(stale)


def test_the_import_check_finds_every_form_of_private_import() -> None:
    source = textwrap.dedent(
        """
        import nascore._hidden
        import nascore.nn._foo.bar as bar
        from nascore.nn.cell import Cell, _build_op
        from nascore import _private, public
        from nascore.nn._foo import thing
        from nascore_strategies._optional import require
        from nascore_formats._mine import ok
        from .. import _mine_too
        import nascore.__main__
        from nascore import __version__

        def later():
            from nascore.nn.cell import _loose_ends
            importlib.import_module("nascore_engines._impl")
        """
    )
    found = private_imports(source, "nascore_formats", "nascore_formats.graph.tracer")
    assert found == [
        (2, "nascore._hidden"),
        (3, "nascore.nn._foo.bar"),
        (4, "nascore.nn.cell._build_op"),
        (5, "nascore._private"),
        (6, "nascore.nn._foo"),
        (7, "nascore_strategies._optional"),
        (14, "nascore.nn.cell._loose_ends"),
        (15, "nascore_engines._impl"),
    ]


# --- check 2: the private attributes of the nn primitives that have a public replacement -----------


def private_name_uses(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of every use of ``names`` in code or strings (``getattr(x, "_name")``); comments don't count."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.string in names:
            found.append((token.start[0], token.string))
        elif token.type == tokenize.STRING:
            for name in names:
                for match in re.finditer(rf"(?<![\w]){re.escape(name)}(?![\w])", token.string):
                    line = token.start[0] + token.string.count("\n", 0, match.start())
                    found.append((line, name))
    return sorted(found)


def _uses_outside_the_core(names: set[str]) -> list[tuple[str, int, str]]:
    """``(file, line, name)`` of every use of ``names`` outside the core distribution."""
    return [
        (relative(path), line, name)
        for path, distribution in source_files()
        if distribution != "nascore"
        for line, name in private_name_uses(path.read_text(encoding="utf-8"), names)
    ]


@pytest.mark.parametrize("name", sorted(MADE_PUBLIC))
def test_no_distribution_reads_a_private_attribute_of_the_nn_primitives(name: str) -> None:
    offences = [
        f"{file}:{line}: reads {name!r}, private to nascore; use {MADE_PUBLIC[name]}"
        for file, line, _ in _uses_outside_the_core({name})
        if (file, name) not in KNOWN_PRIVATE_READS
    ]
    assert not offences, "\n".join(offences)


def test_the_known_private_reads_are_still_there() -> None:
    found = {(file, name) for file, _, name in _uses_outside_the_core(set(MADE_PUBLIC))}
    stale = [f"{file}: {name!r}" for file, name in KNOWN_PRIVATE_READS if (file, name) not in found]
    assert not stale, "fixed, so remove from KNOWN_PRIVATE_READS:\n" + "\n".join(stale)


def test_the_private_attribute_check_sees_reads_and_strings_but_not_comments() -> None:
    source = textwrap.dedent(
        '''
        factories = cell._input_factories  # the comment's _input_factories does not count
        other = getattr(cell, "_input_factories", {})
        fine = cell.input_factories
        also_fine = cell._input_factories_cache
        from nascore.nn.cell import _build_op
        '''
    )
    assert private_name_uses(source, {"_input_factories", "_build_op"}) == [
        (2, "_input_factories"),
        (3, "_input_factories"),
        (6, "_build_op"),
    ]


# --- check 3: the contract modules know nothing of the experiment ---------------------------------


def test_contract_modules_import_nothing_from_the_experiment_package() -> None:
    offences = []
    for name in ("engine", "format", "strategy"):
        path = ROOT / "nascore" / f"{name}.py"
        for line, imported, names in _imported_modules(ast.parse(path.read_text(encoding="utf-8")), f"nascore.{name}", False):
            targets = [imported] + [f"{imported}.{n}" for n in names]
            hits = [t for t in targets if t == "nascore.experiment" or t.startswith("nascore.experiment.")]
            if hits:
                offences.append(f"{relative(path)}:{line}: imports {hits[0]!r}")
    assert not offences, "the contract modules import from nascore.experiment:\n" + "\n".join(offences)
