"""The history of an experiment's metric as a standalone SVG file, with no plotting library.

Each successful trial is a dot at (trial id, metric); the best metric so far is a step line over it;
failed trials are marked on the axis. ``nascore show EXP --plot history.svg`` writes it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["history_svg", "best_so_far"]

_WIDTH, _HEIGHT = 720, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 40, 50


def best_so_far(points: Sequence[tuple[int, float]], maximize: bool = True) -> list[tuple[int, float]]:
    """``[(trial id, best metric up to it), ...]`` for the successful trials ``points`` in id order."""
    best: float | None = None
    curve = []
    for trial_id, value in sorted(points):
        best = value if best is None else (max(best, value) if maximize else min(best, value))
        curve.append((trial_id, best))
    return curve


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def history_svg(trials: Sequence[dict[str, Any]], *, title: str, optimize_mode: str = "maximize",
                metric_name: str = "metric") -> str:
    """The SVG of the history of ``trials`` (dicts with ``id``, ``status`` and ``metric``)."""
    points = [(int(t["id"]), float(t["metric"])) for t in trials
              if t.get("status") == "SUCCEEDED" and t.get("metric") is not None and math.isfinite(t["metric"])]
    failed = [int(t["id"]) for t in trials if t.get("status") == "FAILED"]
    ids = [p[0] for p in points] + failed or [1]
    x_low, x_high = min(ids), max(max(ids), min(ids) + 1)
    values = [p[1] for p in points] or [0.0, 1.0]
    y_low, y_high = min(values), max(values)
    if y_high == y_low:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    pad = (y_high - y_low) * 0.05
    y_low, y_high = y_low - pad, y_high + pad

    def x(value: float) -> float:
        return _LEFT + (value - x_low) / (x_high - x_low) * (_WIDTH - _LEFT - _RIGHT)

    def y(value: float) -> float:
        return _HEIGHT - _BOTTOM - (value - y_low) / (y_high - y_low) * (_HEIGHT - _TOP - _BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
        f'<line x1="{_LEFT}" y1="{_HEIGHT - _BOTTOM}" x2="{_WIDTH - _RIGHT}" y2="{_HEIGHT - _BOTTOM}" stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_HEIGHT - _BOTTOM}" stroke="black"/>',
    ]
    for tick in _ticks(y_low, y_high):
        out.append(f'<line x1="{_LEFT - 4}" y1="{y(tick):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y(tick):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{_LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.4g}</text>')
    for tick in _ticks(x_low, x_high):
        if float(tick).is_integer():
            out.append(f'<text x="{x(tick):.1f}" y="{_HEIGHT - _BOTTOM + 18}" text-anchor="middle">{int(tick)}</text>')
    out.append(f'<text x="{_WIDTH / 2}" y="{_HEIGHT - 12}" text-anchor="middle">trial</text>')
    out.append(f'<text x="16" y="{_HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 16 {_HEIGHT / 2})">'
               f'{html.escape(metric_name)}</text>')
    for trial_id, value in points:
        out.append(f'<circle class="trial" cx="{x(trial_id):.1f}" cy="{y(value):.1f}" r="3" fill="#4c72b0" '
                   f'fill-opacity="0.6"><title>trial {trial_id}: {value:.6g}</title></circle>')
    curve = best_so_far(points, optimize_mode != "minimize")
    if curve:
        path = [f"M{x(curve[0][0]):.1f},{y(curve[0][1]):.1f}"]
        for (_, previous), (trial_id, value) in zip(curve, curve[1:]):
            path.append(f"H{x(trial_id):.1f}V{y(value):.1f}" if value != previous else f"H{x(trial_id):.1f}")
        out.append(f'<path class="best" d="{"".join(path)}" fill="none" stroke="#dd8452" stroke-width="2"/>')
    for trial_id in failed:
        out.append(f'<text class="failed" x="{x(trial_id):.1f}" y="{_HEIGHT - _BOTTOM - 4}" text-anchor="middle" '
                   f'fill="#c44e52">x<title>trial {trial_id} failed</title></text>')
    legend_x = _WIDTH - _RIGHT - 150
    out += [
        f'<circle cx="{legend_x}" cy="{_TOP + 4}" r="3" fill="#4c72b0"/>',
        f'<text x="{legend_x + 8}" y="{_TOP + 8}">trial</text>',
        f'<line x1="{legend_x + 50}" y1="{_TOP + 4}" x2="{legend_x + 70}" y2="{_TOP + 4}" stroke="#dd8452" '
        'stroke-width="2"/>',
        f'<text x="{legend_x + 75}" y="{_TOP + 8}">best so far</text>',
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def write_history(path: Path, detail: dict[str, Any]) -> Path:
    """Write the history of ``detail`` (:func:`~nascore.experiment.report.experiment_detail`) to ``path``."""
    config = detail.get("config", {})
    title = f"Experiment {detail['id']}" + (f" ({detail['name']})" if detail.get("name") else "")
    path.write_text(history_svg(detail["trials"], title=title, optimize_mode=config.get("optimize_mode") or "maximize"))
    return path
