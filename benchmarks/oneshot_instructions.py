"""Instructions per one-shot training step, nascore against the eager floor: a measure that no noise moves.

``oneshot.py`` times steps, and on a shared two-core machine its timings drift by 10-35% within minutes,
which hides differences of a few percent. This script counts the instructions a step executes instead:
each side (nascore's strategy, and the hand-written eager loop of ``_eager_floor.py``) runs under
valgrind's ``cachegrind`` (``--cache-sim=no``) once with ``--steps LOW`` and once with ``--steps HIGH``
timed steps, and the difference divided by ``HIGH - LOW`` is the count of one step: start-up, imports and
warm-up cancel out. Two measurements of the same step agree to within about 0.5%.

Instructions are not time: the interpreter's instructions run at a lower rate than a kernel's vector
instructions, so a framework that runs the same count as the floor with more of it in Python is still
slower. On December 7 2026, small DARTS: nascore 69.6-70.0 M a step, the floor 68.6-68.8 M (1.01-1.02x), while the
timings put nascore at 0.85-0.89 of the floor; of the difference, the Python interpreter's own loop
(``_PyEval_EvalFrameDefault``) ran 1.46 M instructions a step in nascore against 0.76 M in the floor.

Needs valgrind (``apt-get install valgrind``); each run takes a few minutes (two run at a time).

    python benchmarks/oneshot_instructions.py
    python benchmarks/oneshot_instructions.py --strategy random-oneshot --regime medium --steps 10 60

The script prints figures and always exits 0.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(side: str, strategy: str, regime: str, steps: int) -> None:
    """Run ``steps`` timed steps of ``strategy`` on ``side`` (``nascore`` or ``floor``) in this process."""
    sys.path.insert(0, str(HERE))
    import oneshot

    oneshot.quiet_process(threads=1)
    args = oneshot.cell_args(regime, steps)
    rate = oneshot.throughput(strategy, args) if side == "nascore" else oneshot.eager_floor(strategy, args)
    print(f"{side} {strategy} {regime} {steps} steps: {rate:.1f} steps/s")


def count(valgrind: str, side: str, strategy: str, regime: str, steps: int) -> int:
    """Instructions of a whole child run (cachegrind's ``I refs``)."""
    command = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, str(Path(__file__).resolve()), "--child", side, "--strategy", strategy,
               "--regime", regime, "--steps", str(steps), str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{side} ({steps} steps) failed under valgrind (exit {done.returncode}): {done.stderr[-1500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", choices=["darts", "random-oneshot"], default="darts")
    parser.add_argument("--regime", choices=["small", "medium"], default="small")
    parser.add_argument("--steps", type=int, nargs=2, default=[30, 130], metavar=("LOW", "HIGH"),
                        help="timed steps of the two runs of each side (default 30 130)")
    parser.add_argument("--child", choices=["nascore", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.strategy, args.regime, args.steps[0])
        return
    low, high = args.steps
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (apt-get install valgrind): nothing measured")
        return
    if high <= low:
        print(f"--steps: HIGH ({high}) must be larger than LOW ({low}): nothing measured")
        return
    print(f"Instructions per {args.strategy} step ({args.regime}), difference of {high}- and {low}-step runs "
          "under cachegrind", flush=True)
    runs = [(side, steps) for side in ("nascore", "floor") for steps in (low, high)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            totals = dict(zip(runs, pool.map(lambda run: count(valgrind, run[0], args.strategy, args.regime, run[1]), runs)))
    except RuntimeError as exc:
        print(exc)
        return
    per_step = {side: (totals[side, high] - totals[side, low]) / (high - low) for side in ("nascore", "floor")}
    for side, value in per_step.items():
        print(f"  {side:8s} {value / 1e6:8.2f} M instructions a step")
    print(f"  nascore / floor {per_step['nascore'] / per_step['floor']:.3f}")


if __name__ == "__main__":
    main()
