"""The ``nascore`` command line.

Each subcommand is a parser added in :func:`build_parser` plus a function ``cmd_<name>(args) ->
int``. To add one, write ``_add_<name>_parser(subparsers)`` (it calls
``parser.set_defaults(func=cmd_<name>)``) and call it from :func:`build_parser`. A
:class:`~nascore.errors.NascoreError` escaping a command prints ``error: <message>`` and exits 2.

When whoever reads the output stops reading (``nascore list | head``), every command stops quietly,
without a traceback, and exits 141 (128 + SIGPIPE): what a shell reports for a command that a closed
pipe ended, like ``yes | head``, so that ``set -o pipefail`` scripts see it as they see other tools.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nascore.errors import NascoreError

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as the shell reports `yes | head`


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``nascore`` with every subcommand."""
    from nascore.plugin.manager import core_version

    parser = argparse.ArgumentParser(prog="nascore", description="Neural architecture search for PyTorch.")
    parser.add_argument("--version", action="version", version=f"nascore {core_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show more log messages (-vv for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    _add_plugins_parser(subparsers)
    _add_list_parser(subparsers)
    _add_show_parser(subparsers)
    _add_run_parser(subparsers)
    _add_resume_parser(subparsers)
    _add_dashboard_parser(subparsers)
    _add_report_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nascore`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    0: done; 2: a nascore error (printed as ``error: <message>``) or a usage mistake; 130: interrupted;
    141 (:data:`EXIT_BROKEN_PIPE`): the output's reader went away (``nascore list | head``).
    """
    try:
        try:
            return _run(argv)
        finally:
            # Buffered output still unwritten would otherwise meet the closed pipe at exit, where
            # Python prints "Exception ignored ... BrokenPipeError" and exits 120; here it is caught.
            sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush does not fail again.

    Python's documented recipe for SIGPIPE (the ``signal`` module's "Note on SIGPIPE").
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a file (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _run(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its command: :func:`main` without the broken-pipe handling."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    with _log_to_stderr(args.verbose):
        try:
            return int(func(args))
        except NascoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


@contextlib.contextmanager
def _log_to_stderr(verbosity: int) -> Iterator[None]:
    """Show nascore's log records on stderr while a command runs (warnings, or more with -v)."""
    logger = logging.getLogger("nascore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    previous_level = logger.level
    logger.setLevel(logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


# --- nascore plugins -----------------------------------------------------------------------------


def _add_plugins_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins and what they register",
        description="List every registered strategy, engine, format, evaluator and optimizer, "
        "with the distribution that provides it, then any plugin that failed to load.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of registrations")
    parser.set_defaults(func=cmd_plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    """Print every registration (kind, name, distribution, version) and every load failure."""
    from nascore.plugin.manager import get_plugins

    # Failures are part of this command's report; logging them too would print them twice.
    quiet = None if getattr(args, "verbose", 0) else _DropPluginLoadWarnings()
    manager_logger = logging.getLogger("nascore.plugin.manager")
    if quiet is not None:
        manager_logger.addFilter(quiet)
    try:
        host = get_plugins()
    finally:
        if quiet is not None:
            manager_logger.removeFilter(quiet)
    registrations = host.registrations()

    if args.json:
        for failure in host.failures:
            print(f"warning: {str(failure).splitlines()[0]}", file=sys.stderr)
        print(json.dumps([_registration_json(entry) for entry in registrations], indent=2))
        return EXIT_OK

    rows = [(entry.kind, entry.name, entry.distribution, entry.version or "-") for entry in registrations]
    if rows:
        print(_table(("KIND", "NAME", "DISTRIBUTION", "VERSION"), rows))
    else:
        print("No plugins registered anything.")
    if host.disabled:
        print()
        print("Not loaded (NASCORE_DISABLED_PLUGINS / NASCORE_LOAD_PLUGINS):")
        for info in host.disabled:
            print(f"  {info.provider} (entry point {info.name!r})")
    if host.failures:
        print()
        print(f"Failed plugins ({len(host.failures)}):")
        for failure in host.failures:
            reason = str(failure).splitlines()[0]
            print(f"  {failure.distribution or 'unknown'}: {reason}")
        if not getattr(args, "verbose", 0):
            print("Run `nascore -v plugins` for tracebacks.")
    return EXIT_OK


class _DropPluginLoadWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING


def _registration_json(entry: Any) -> dict[str, Any]:
    obj = entry.obj
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return {
        "kind": entry.kind,
        "name": entry.name,
        "distribution": entry.distribution,
        "version": entry.version,
        "plugin": entry.plugin,
        "object": f"{module}:{qualname}",
        "description": entry.description,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def _experiment_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment-dir",
        type=Path,
        default=None,
        help="where experiments are stored (default: $NASCORE_EXPERIMENT_DIR or ~/nascore-experiments)",
    )


def _resolve_experiment_dir(args: argparse.Namespace) -> Path:
    from nascore.experiment.config import default_experiment_dir

    return (args.experiment_dir or default_experiment_dir()).expanduser()


def _existing_experiment_dir(args: argparse.Namespace) -> Path:
    """The experiment folder to read; a :class:`~nascore.errors.StoreError` when it is not a readable folder.

    A missing folder is an error, not an empty list: it is most often a mistyped path.
    """
    from nascore.errors import StoreError

    directory = _resolve_experiment_dir(args)
    if args.experiment_dir is not None:
        origin = "given with --experiment-dir; check the path: experiments are stored in the folder their config's experiment_dir names"
    elif os.environ.get("NASCORE_EXPERIMENT_DIR"):
        origin = "from $NASCORE_EXPERIMENT_DIR; check the path, or pass --experiment-dir DIR"
    else:
        origin = "the default folder: no experiment was stored there yet; pass --experiment-dir DIR to read another"
    try:
        mode = directory.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise StoreError(f"no such folder: {directory} ({origin})") from None
    except OSError as exc:
        raise StoreError(f"cannot read the folder {directory}: {exc.strerror} ({origin})") from None
    if not stat.S_ISDIR(mode):
        raise StoreError(f"not a folder: {directory} is a file ({origin})")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise StoreError(f"cannot read the folder {directory}: permission denied ({origin})")
    return directory


def _add_list_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help="list stored experiments (read-only)")
    _experiment_dir_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    """``nascore list``: one line per stored experiment."""
    from nascore.experiment.report import experiments_summary, format_list

    directory = _existing_experiment_dir(args)
    rows = experiments_summary(directory)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no experiments in {directory}")
    else:
        print(format_list(rows, _table))
    return EXIT_OK


def _add_show_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("show", help="show one experiment: status, best trials, every trial (read-only)")
    parser.add_argument("experiment_id", metavar="EXP", help="the experiment id (see `nascore list`)")
    _experiment_dir_argument(parser)
    parser.add_argument("--top", type=int, default=3, help="how many best trials to show (default 3)")
    parser.add_argument("--summary", action="store_true", help="leave out the table of every trial")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--plot", metavar="FILE", type=Path, default=None,
                        help="also write the history of the metric (each trial and the best so far) as an SVG file")
    parser.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """``nascore show EXP``: the experiment's status, best trials and trial table."""
    from nascore.errors import ConfigError
    from nascore.experiment.plot import write_history
    from nascore.experiment.report import experiment_detail, format_detail

    if args.plot is not None and args.plot.suffix != ".svg":
        raise ConfigError(f"--plot {args.plot}: the plot is an SVG file; give a name ending in .svg")
    detail = experiment_detail(_existing_experiment_dir(args), args.experiment_id, top=args.top)
    print(json.dumps(detail, indent=2) if args.json else format_detail(detail, _table, show_all=not args.summary))
    if args.plot is not None:
        try:
            write_history(args.plot, detail)
        except OSError as exc:
            raise ConfigError(f"--plot {args.plot}: cannot write it: {exc.strerror}") from exc
        print(f"history written to {args.plot}", file=sys.stderr)
    return EXIT_OK


# --- nascore run / nascore resume ------------------------------------------------------------------


def _add_run_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a search described by a TOML file (space, evaluator, strategy, config)",
        description="Run the search a run file describes: its [space] and [evaluator] tables name them by "
        "import path with JSON arguments, the other keys are ExperimentConfig fields. Ctrl-C stops it "
        "cleanly; `nascore resume EXP` continues it.",
    )
    parser.add_argument("run_file", metavar="CONFIG", type=Path, help="the run file (.toml or .json)")
    _experiment_dir_argument(parser)
    parser.add_argument("--max-trials", type=int, default=None, help="override the file's max_trials")
    parser.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """``nascore run CONFIG.toml``: build the space and evaluator, run, print where the results are."""
    from nascore.experiment import Experiment
    from nascore.experiment.runfile import load_run_file

    run_file = load_run_file(args.run_file, max_trials=args.max_trials, experiment_dir=args.experiment_dir)
    experiment = Experiment(run_file.build_space(), run_file.build_evaluator(), None, run_file.config)
    return _run_experiment(experiment, args)


def _add_resume_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "resume",
        help="continue a stopped experiment (optionally with a larger budget)",
        description="Continue an interrupted or finished experiment: finished trials are kept, interrupted "
        "ones run again. Its space and evaluator are rebuilt from the store (they must be importable).",
    )
    parser.add_argument("experiment_id", metavar="EXP", help="the experiment id (see `nascore list`)")
    _experiment_dir_argument(parser)
    parser.add_argument("--max-trials", type=int, default=None, help="a new trial budget (in all, not more)")
    parser.set_defaults(func=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    """``nascore resume EXP``: reopen the experiment from the store and run it on."""
    from nascore.errors import ConfigError
    from nascore.experiment import Experiment

    if os.getcwd() not in sys.path:  # a space module in the current folder imports, as it did for `nascore run`
        sys.path.insert(0, os.getcwd())
    experiment = Experiment.resume(args.experiment_id, experiment_dir=_existing_experiment_dir(args))
    if args.max_trials is not None:
        done = len(experiment.trials())
        if args.max_trials <= done:
            raise ConfigError(
                f"--max-trials {args.max_trials}: experiment {args.experiment_id} has {done} trials already; "
                "the budget counts every trial, so give more than that"
            )
        experiment.extend_budget(max_trials=args.max_trials)
    return _run_experiment(experiment, args)


def _run_experiment(experiment: Any, args: argparse.Namespace) -> int:
    print(f"experiment {experiment.id} in {experiment.path}", file=sys.stderr)
    status = experiment.run()
    best = experiment.best_trial()
    if best is not None:
        print(json.dumps({"experiment": experiment.id, "status": status, "best_trial": best.id,
                          "metric": best.metric, "sample": best.sample}))
    if status == "INTERRUPTED":
        print(f"stopped; continue with: nascore resume {experiment.id} --experiment-dir {experiment.config.experiment_dir}",
              file=sys.stderr)
        return 130
    print(f"see it with: nascore show {experiment.id} --experiment-dir {experiment.config.experiment_dir}", file=sys.stderr)
    return EXIT_OK


# --- nascore dashboard / nascore report ------------------------------------------------------------


def _add_dashboard_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="a live web page over the stored experiments (read-only)",
        description="Serve a local web page showing the experiments: trials, metric history, intermediate "
        "results, the effect of each decision, architectures and their differences, one-shot architecture "
        "weights. It updates while experiments run and never writes to their stores. Needs the dashboard "
        'extra: pip install "nascore[dashboard]".',
    )
    parser.add_argument("experiment_id", metavar="EXP", nargs="?", default=None, help="the experiment to open first")
    _experiment_dir_argument(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves the network)")
    parser.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0 picks a free one)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="how often the page updates (default 2)")
    parser.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """``nascore dashboard [EXP]``: serve the dashboard until Ctrl-C."""
    from nascore.dashboard.server import require_server_dependencies, serve
    from nascore.experiment.store import ExperimentStore

    require_server_dependencies()
    directory = _existing_experiment_dir(args)
    if args.experiment_id is not None:
        ExperimentStore.open(directory, args.experiment_id, readonly=True).close()  # a clear error for a wrong id
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this machine can read the experiments",
              file=sys.stderr)

    def ready(url: str) -> None:
        print(f"nascore dashboard of {directory} on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)

    try:
        serve(directory, args.experiment_id, host=args.host, port=args.port, poll_ms=int(args.poll * 1000), on_ready=ready)
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return EXIT_OK


def _add_report_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an experiment's dashboard views as one self-contained HTML file (read-only)",
        description="Write the dashboard's views of one experiment (trials, history, intermediate results, "
        "decisions, architectures, one-shot weights) as one HTML file with its data and scripts inside: "
        "it opens offline, with no server.",
    )
    parser.add_argument("experiment_id", metavar="EXP", help="the experiment id (see `nascore list`)")
    _experiment_dir_argument(parser)
    parser.add_argument("--html", metavar="FILE", type=Path, required=True, help="the HTML file to write")
    parser.add_argument("--code", type=int, default=20, metavar="N",
                        help="graph format: include the generated code of the N best trials (default 20; 0: none)")
    parser.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """``nascore report EXP --html FILE``."""
    from nascore.dashboard.report import write_report
    from nascore.errors import ConfigError

    if args.html.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--html {args.html}: the report is an HTML file; give a name ending in .html")
    directory = _existing_experiment_dir(args)
    try:
        write_report(args.html, directory, args.experiment_id, code_limit=args.code)
    except OSError as exc:
        raise ConfigError(f"--html {args.html}: cannot write it: {exc.strerror or exc}") from exc
    print(f"report of {args.experiment_id} written to {args.html}", file=sys.stderr)
    return EXIT_OK
