"""Two versions of nascore side by side: alternating one-shot runs of a git ref and of this checkout, paired.

On this shared two-core machine a timing drifts by 10-35% within minutes, so a change worth 2-5% cannot be
seen by timing the old code, then the new. This script keeps two child processes alive, one importing
nascore (core and plugins) from a temporary ``git worktree`` of ``REF``, one from this checkout (as
installed, editable), and has them train the same ``oneshot.py`` supernet cell in turn (the order flips
every pair; the first pair warms up and is dropped). Each new run is divided by the baseline run next to
it: a slow spell that spans both cancels out. It prints the best run of each side and the median and
range of the paired ratios (``> 1``: this checkout is faster).

Both sides run this checkout's ``oneshot.py`` (the same space, data and settings); only the framework
differs. On December 7 2026, commit 42d04e2 against its parent, 12 pairs of small DARTS: paired median
1.028x (0.946-1.146); 6 pairs of medium RandomOneShot: 1.023x (0.979-1.038).

    python benchmarks/oneshot_ab.py HEAD~1
    python benchmarks/oneshot_ab.py main --strategy random-oneshot --regime medium --pairs 6

The script prints figures and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child() -> None:
    """Train one cell per line read from stdin (``strategy regime steps``); print its steps per second."""
    sys.path.insert(0, str(HERE))
    import oneshot

    import nascore

    oneshot.quiet_process(threads=1)
    print(json.dumps({"nascore": str(Path(nascore.__file__).resolve().parent.parent)}), flush=True)
    for line in sys.stdin:
        strategy, regime, steps = line.split()
        print(json.dumps({"steps_per_s": oneshot.throughput(strategy, oneshot.cell_args(regime, int(steps)))}), flush=True)


def source_path(tree: Path) -> str:
    """``PYTHONPATH`` that imports nascore and every plugin from ``tree`` (ahead of the editable installs)."""
    plugins = sorted(str(p) for p in (tree / "plugins").iterdir() if (p / "pyproject.toml").exists())
    return os.pathsep.join([str(tree), *plugins])


def start(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    # Run from a neutral folder: the current directory comes first on sys.path and would shadow PYTHONPATH.
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(), env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("a child process could not start; run it alone to see why")
    return process, json.loads(line)["nascore"]


def run(process: subprocess.Popen[str], cell: str) -> float:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(cell + "\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("a child process died; run it alone to see why")
    return float(json.loads(line)["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", nargs="?", help="the baseline: a git ref of this repository (HEAD~1, main, a commit)")
    parser.add_argument("--strategy", choices=["darts", "random-oneshot"], default="darts")
    parser.add_argument("--regime", choices=["small", "medium"], default="small")
    parser.add_argument("--steps", type=int, help="timed steps per run (default: oneshot.py's for the cell)")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of runs after the warm-up pair")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.ref is None:
        parser.error("give the baseline's git ref (HEAD~1, main, a commit)")
    sys.path.insert(0, str(HERE))
    import oneshot

    sizes = oneshot.REGIMES[args.regime]
    steps = args.steps or (sizes["sampling_steps"] if args.strategy == "random-oneshot" else sizes["steps"])
    cell = f"{args.strategy} {args.regime} {steps}"
    with tempfile.TemporaryDirectory(prefix="nascore-ab-") as folder:
        tree = Path(folder) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), args.ref], check=True)
        processes: dict[str, subprocess.Popen[str]] = {}
        try:
            processes["baseline"], old_root = start({**os.environ, "PYTHONPATH": source_path(tree)})
            processes["checkout"], new_root = start({k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
            if Path(old_root) != tree.resolve() or Path(new_root) != ROOT:
                print(f"nascore imports from {old_root} and {new_root}, not from {tree} and {ROOT}: install this "
                      "checkout editable (pip install -e .) to compare it")
                return
            runs: dict[str, list[float]] = {"baseline": [], "checkout": []}
            for pair in range(args.pairs + 1):
                for side in ("baseline", "checkout") if pair % 2 else ("checkout", "baseline"):
                    rate = run(processes[side], cell)
                    if pair:  # the first pair warms both up
                        runs[side].append(rate)
        finally:
            for process in processes.values():
                if process.stdin is not None:
                    process.stdin.close()
                process.wait()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    ratios = sorted(new / old for new, old in zip(runs["checkout"], runs["baseline"]))
    print(f"{cell} steps, {args.pairs} pairs: {args.ref} best {max(runs['baseline']):.2f} steps/s, this checkout best "
          f"{max(runs['checkout']):.2f} ({max(runs['checkout']) / max(runs['baseline']):.3f}x); paired checkout / "
          f"{args.ref}: median {statistics.median(ratios):.3f}x, range {ratios[0]:.3f}-{ratios[-1]:.3f}x")


if __name__ == "__main__":
    main()
