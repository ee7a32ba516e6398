"""Read-only views of stored experiments, as the ``nascore list`` and ``nascore show`` commands print them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nascore.experiment.store import ExperimentStore, list_experiments
from nascore.record import TrialRecord

__all__ = ["experiments_summary", "experiment_detail", "format_list", "format_detail"]


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _rank(trials: list[TrialRecord], optimize_mode: str) -> list[TrialRecord]:
    done = [t for t in trials if t.succeeded]
    return sorted(done, key=lambda t: t.metric, reverse=optimize_mode == "maximize")  # type: ignore[arg-type, return-value]


def experiments_summary(experiment_dir: Path) -> list[dict[str, Any]]:
    """One summary per stored experiment: id, name, status, trial counts, best metric."""
    rows = []
    for meta in list_experiments(experiment_dir):
        if "error" in meta:
            rows.append(meta)
            continue
        with ExperimentStore.open(experiment_dir, meta["id"], readonly=True) as store:
            mode = meta.get("config", {}).get("optimize_mode", "maximize")
            ranked = _rank(store.trials(), mode)
        counts = meta.get("trials", {})
        rows.append({
            "id": meta["id"],
            "name": meta.get("experiment_name"),
            "status": meta.get("status", "UNKNOWN"),
            "strategy": (meta.get("strategy") or {}).get("name") or (meta.get("strategy") or {}).get("class"),
            "trials": sum(counts.values()),
            "succeeded": counts.get("SUCCEEDED", 0),
            "failed": counts.get("FAILED", 0),
            "best": ranked[0].metric if ranked else None,
            "created": meta.get("created"),
        })
    return rows


def format_list(rows: list[dict[str, Any]], table: Any) -> str:
    if not rows:
        return "no experiments"
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["id"], "-", "UNREADABLE", "-", "-", "-", r["error"].splitlines()[0]])
            continue
        body.append([
            r["id"], r["name"] or "-", r["status"], str(r["strategy"] or "-"),
            f"{r['trials']} ({r['succeeded']} ok, {r['failed']} failed)", _metric(r["best"]), _when(r["created"]),
        ])
    return table(["ID", "NAME", "STATUS", "STRATEGY", "TRIALS", "BEST", "CREATED"], body)


def experiment_detail(experiment_dir: Path, experiment_id: str, top: int | None = None) -> dict[str, Any]:
    """Everything ``nascore show`` prints, as data."""
    with ExperimentStore.open(experiment_dir, experiment_id, readonly=True) as store:
        meta = store.meta()
        trials = store.trials(with_intermediates=True)
    config = meta.get("config", {})
    ranked = _rank(trials, config.get("optimize_mode", "maximize"))
    return {
        "id": experiment_id,
        "path": str(Path(experiment_dir) / experiment_id),
        "name": meta.get("experiment_name"),
        "status": meta.get("status", "UNKNOWN"),
        "created": meta.get("created"),
        "elapsed": meta.get("elapsed"),
        "config": config,
        "strategy": meta.get("strategy"),
        "best": [_trial_json(t) for t in ranked[: top or 3]],
        "trials": [_trial_json(t) for t in trials],
    }


def _trial_json(t: TrialRecord) -> dict[str, Any]:
    return {
        "id": t.id, "status": t.status.value, "metric": t.metric, "metrics": t.metrics, "sample": t.sample,
        "intermediates": t.intermediates, "duration": t.duration, "attempt": t.attempt, "error": t.error,
    }


def format_detail(detail: dict[str, Any], table: Any, show_all: bool = True) -> str:
    config = detail["config"]
    strategy = detail.get("strategy") or {}
    lines = [
        f"Experiment {detail['id']}" + (f" ({detail['name']})" if detail["name"] else ""),
        f"  status:   {detail['status']}",
        f"  path:     {detail['path']}",
        f"  created:  {_when(detail['created'])}   elapsed: {detail['elapsed'] or 0:.1f}s",
        f"  strategy: {strategy.get('name') or strategy.get('class') or '-'}   engine: {config.get('engine')}   "
        f"format: {config.get('format')}   optimize: {config.get('optimize_mode')}",
        "",
        "Best:",
    ]
    if detail["best"]:
        for t in detail["best"]:
            lines.append(f"  trial {t['id']}: {_metric(t['metric'])}  {json.dumps(t['sample'])}")
    else:
        lines.append("  no successful trial")
    if show_all and detail["trials"]:
        lines += ["", "Trials:"]
        rows = []
        for t in detail["trials"]:
            note = json.dumps(t["sample"]) if t["status"] != "FAILED" else (t["error"] or "").strip().splitlines()[0][:100]
            duration = "-" if t["duration"] is None else f"{t['duration']:.2f}s"
            rows.append([str(t["id"]), t["status"], _metric(t["metric"]), duration, note])
        lines.append(table(["ID", "STATUS", "METRIC", "TIME", "SAMPLE / ERROR"], rows))
    return "\n".join(lines)
