"""The ``nascore`` command: what a user sees about installed plugins and stored experiments, in-process
and as a real command (including a reader that stops reading: ``nascore list | head``)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nascore.plugin
from nascore.cli import EXIT_BROKEN_PIPE, build_parser, main
from nascore.errors import PluginError
from nascore.experiment.store import ExperimentStore
from nascore.plugin import reset_plugins
from nascore.testing.distributions import make_distribution

REPO_ROOT = Path(nascore.plugin.__file__).resolve().parents[2]

GOOD_PLUGIN = '''
from nascore.engine import ExecutionEngine
from nascore.plugin import hookimpl
from nascore.strategy import Strategy


class ToyStrategy(Strategy):
    """Tries the same architecture over and over."""

    def run(self, context):
        pass


class ToyEngine(ExecutionEngine):
    start = submit = idle_slots = running = wait = shutdown = lambda *args: None


@hookimpl
def nascore_register_strategies(register):
    register("toy", ToyStrategy)


@hookimpl
def nascore_register_engines(register):
    register("toy-engine", ToyEngine)
'''

BROKEN_PLUGIN = "raise RuntimeError('broken_plugin cannot be imported')\n"


def write_plugins(root: Path) -> list[Path]:
    """A good third-party distribution and one that raises on import, as pip would leave them."""
    return [
        make_distribution(
            root, "broken_plugin", "0.1", {"broken_plugin": BROKEN_PLUGIN}, {"broken": "broken_plugin"}
        ),
        make_distribution(root, "good-plugin", "1.2", {"good_plugin": GOOD_PLUGIN}, {"good": "good_plugin"}),
    ]


# --- in process ---------------------------------------------------------------------------------


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Only the distributions of :func:`write_plugins` are installed; the plugin host starts fresh."""
    dist_infos = write_plugins(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        importlib.metadata,
        "distributions",
        lambda **_: iter([importlib.metadata.PathDistribution(path) for path in dist_infos]),
    )
    monkeypatch.delenv("NASCORE_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("NASCORE_LOAD_PLUGINS", raising=False)
    reset_plugins()
    yield tmp_path
    reset_plugins()
    sys.modules.pop("good_plugin", None)


def test_plugins_prints_a_sorted_table_then_the_failures(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "DISTRIBUTION", "VERSION"]
    rows = [line.split() for line in lines[1 : lines.index("")]]
    ours = [row for row in rows if row[2] in {"good-plugin", "broken_plugin"}]
    assert ours == [["engine", "toy-engine", "good-plugin", "1.2"], ["strategy", "toy", "good-plugin", "1.2"]]
    assert rows == sorted(rows, key=lambda row: (row[0], row[1]))
    failures = out[out.index("Failed plugins") :]
    assert "broken_plugin: " in failures
    assert "RuntimeError: broken_plugin cannot be imported" in failures


def test_plugins_json_lists_every_registration(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0

    captured = capsys.readouterr()
    entries = json.loads(captured.out)
    toy = next(entry for entry in entries if entry["name"] == "toy")
    assert toy == {
        "kind": "strategy",
        "name": "toy",
        "distribution": "good-plugin",
        "version": "1.2",
        "plugin": "good",
        "object": "good_plugin:ToyStrategy",
        "description": "Tries the same architecture over and over.",
    }
    assert "broken_plugin" in captured.err  # failures stay visible without spoiling the JSON


def test_plugins_lists_what_the_environment_variables_kept_out(
    installed: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NASCORE_DISABLED_PLUGINS", "broken-plugin")

    assert main(["plugins"]) == 0

    out = capsys.readouterr().out
    assert "Not loaded" in out and "broken_plugin 0.1 (entry point 'broken')" in out
    assert "RuntimeError" not in out


def test_a_nascore_error_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_get_plugins() -> None:
        raise PluginError("the plugin registry is on fire")

    monkeypatch.setattr("nascore.plugin.manager.get_plugins", failing_get_plugins)

    assert main(["plugins"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: the plugin registry is on fire\n"
    assert "Traceback" not in captured.err


def test_no_subcommand_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().err


def test_the_parser_has_a_plugins_subcommand() -> None:
    args = build_parser().parse_args(["plugins", "--json"])
    assert args.command == "plugins" and args.json is True


# --- as a real command, with real distributions on PYTHONPATH -----------------------------------


def run_nascore(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("NASCORE_")}
    pythonpath = [str(root), str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    environ.update(PYTHONPATH=os.pathsep.join(pythonpath), **env)
    return subprocess.run(
        [sys.executable, "-m", "nascore", *args], capture_output=True, text=True, env=environ, timeout=120
    )


def test_python_m_nascore_plugins_reports_the_broken_distribution_and_lists_the_good_one(
    tmp_path: Path,
) -> None:
    write_plugins(tmp_path)

    result = run_nascore(tmp_path, "plugins")

    assert result.returncode == 0, result.stderr
    assert ["strategy", "toy", "good-plugin", "1.2"] in [line.split() for line in result.stdout.splitlines()]
    failures = result.stdout[result.stdout.index("Failed plugins") :]
    assert "broken_plugin: " in failures
    assert "RuntimeError: broken_plugin cannot be imported" in failures
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"NASCORE_DISABLED_PLUGINS": "broken-plugin"},
        {"NASCORE_DISABLED_PLUGINS": "broken"},
        {"NASCORE_LOAD_PLUGINS": "good_plugin"},
    ],
)
def test_python_m_nascore_plugins_honours_the_environment_variables(
    tmp_path: Path, env: dict[str, str]
) -> None:
    write_plugins(tmp_path)

    result = run_nascore(tmp_path, "plugins", "--json", **env)

    assert result.returncode == 0, result.stderr
    toy = [entry for entry in json.loads(result.stdout) if entry["name"] == "toy"]
    assert [(entry["distribution"], entry["version"]) for entry in toy] == [("good-plugin", "1.2")]
    assert "broken_plugin cannot be imported" not in result.stderr


def test_the_allow_list_can_keep_out_the_good_plugin_too(tmp_path: Path) -> None:
    write_plugins(tmp_path)

    result = run_nascore(tmp_path, "plugins", "--json", NASCORE_LOAD_PLUGINS="someone-else")

    assert result.returncode == 0, result.stderr
    assert [entry for entry in json.loads(result.stdout) if entry["distribution"] == "good-plugin"] == []
    assert "broken_plugin cannot be imported" not in result.stderr


# --- nascore list / show: which folder they read -------------------------------------------------


def store_experiments(folder: Path, count: int, name: str = "demo") -> list[str]:
    """``count`` real stored experiments (no trials) named ``name``; their ids."""
    ids = [f"exp{index:03d}" for index in range(count)]
    for experiment_id in ids:
        meta = {"experiment_name": name, "status": "DONE", "config": {"optimize_mode": "maximize"}}
        ExperimentStore.create(folder, experiment_id, meta=meta).close()
    return ids


@pytest.mark.parametrize("command", [["list"], ["show", "exp000"]])
def test_a_missing_experiment_folder_is_an_error_not_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "nonexistent"

    assert main([*command, "--experiment-dir", str(missing)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: no such folder: {missing} (given with --experiment-dir; check the path")
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("command", [["list"], ["show", "exp000"]])
def test_an_experiment_folder_that_is_a_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    a_file = tmp_path / "experiments.toml"
    a_file.write_text("")

    assert main([*command, "--experiment-dir", str(a_file)]) == 2

    assert capsys.readouterr().err.startswith(f"error: not a folder: {a_file} is a file (given with --experiment-dir")


def test_the_error_says_where_the_folder_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NASCORE_EXPERIMENT_DIR", str(tmp_path / "from-env"))
    assert main(["list"]) == 2
    assert f"no such folder: {tmp_path / 'from-env'} (from $NASCORE_EXPERIMENT_DIR" in capsys.readouterr().err

    monkeypatch.delenv("NASCORE_EXPERIMENT_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert f"no such folder: {tmp_path / 'nascore-experiments'} (the default folder: no experiment was stored" in err


def test_an_empty_experiment_folder_lists_no_experiments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--experiment-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no experiments in {tmp_path}\n"

    assert main(["list", "--json", "--experiment-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_folder_with_experiments_still_lists_and_shows_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_experiments(tmp_path, 2)

    assert main(["list", "--experiment-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "STATUS"] and [line.split()[0] for line in lines[1:]] == ["exp000", "exp001"]
    assert main(["show", "exp001", "--experiment-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("Experiment exp001 (demo)")


# --- a reader that goes away: `nascore ... | head` ----------------------------------------------


def nascore_argv_env(*args: str) -> tuple[list[str], dict[str, str]]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("NASCORE_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    environ.pop("PYTHONUNBUFFERED", None)  # Python's default: stdout buffered when it is a pipe
    return [sys.executable, "-m", "nascore", *args], environ


def test_nascore_list_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    # More output than a pipe holds, so the command is still writing when head has gone.
    store_experiments(tmp_path, 40, name="n" * 4000)
    argv, environ = nascore_argv_env("list", "--experiment-dir", str(tmp_path))

    producer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, timeout=120)
    producer.stdout.close()  # head holds the only reading end: when it exits, the pipe is closed
    err = producer.stderr.read().decode()
    producer.stderr.close()
    returncode = producer.wait(timeout=120)

    assert head.stdout.decode().split()[:2] == ["ID", "NAME"]
    assert err == "" and returncode == EXIT_BROKEN_PIPE


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("command", [["plugins"], ["list"], ["list", "--json"], ["show", "exp000"], ["--help"]])
def test_every_command_stops_quietly_when_its_output_pipe_is_closed(
    tmp_path: Path, command: list[str], buffered: bool
) -> None:
    store_experiments(tmp_path, 1)
    if command[0] in ("list", "show"):
        command = [*command, "--experiment-dir", str(tmp_path)]
    argv, environ = nascore_argv_env(*command)
    if not buffered:
        environ["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, env=environ, text=True, timeout=120)
    finally:
        os.close(write_end)

    assert result.stderr == ""
    # Unbuffered, argparse itself swallows the failed write of --help, then exits 0 as usual.
    assert result.returncode == (0 if command == ["--help"] and not buffered else EXIT_BROKEN_PIPE)
