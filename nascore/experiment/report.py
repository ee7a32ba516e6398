"""Read-only views of stored experiments, as the ``nascore list`` and ``nascore show`` commands print them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nascore.experiment.lock import describe_holder
from nascore.experiment.store import ExperimentStore, list_experiments, liveness
from nascore.record import TrialRecord

__all__ = ["experiments_summary", "experiment_detail", "format_list", "format_detail", "other_metrics"]


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _rank(trials: list[TrialRecord], optimize_mode: str) -> list[TrialRecord]:
    done = [t for t in trials if t.succeeded]
    return sorted(done, key=lambda t: t.metric, reverse=optimize_mode == "maximize")  # type: ignore[arg-type, return-value]


def _status_line(detail: dict[str, Any]) -> str:
    status = detail["status"]
    if status == "RUNNING" and detail.get("holder"):
        return f"RUNNING (by {describe_holder(detail['holder'])})"
    if status == "DEAD":
        return (
            f"DEAD (recorded RUNNING, but no process runs it any more: it was killed or crashed; last heartbeat "
            f"{_when(detail.get('heartbeat'))}); Experiment.resume({detail['id']!r}) continues it"
        )
    return status


def _status(meta: dict[str, Any], alive: bool | None) -> str:
    """The recorded status, except that a RUNNING experiment nobody runs any more is DEAD."""
    status = meta.get("status", "UNKNOWN")
    return "DEAD" if status == "RUNNING" and alive is False else status


def experiments_summary(experiment_dir: Path) -> list[dict[str, Any]]:
    """One summary per stored experiment: id, name, status, trial counts, best metric.

    ``status`` is ``DEAD`` for an experiment recorded RUNNING whose process is gone (killed or crashed).
    """
    rows = []
    for meta in list_experiments(experiment_dir):
        if "error" in meta:
            rows.append(meta)
            continue
        counts = meta.get("trials", {})
        state = meta.get("liveness", {})
        rows.append({
            "id": meta["id"],
            "name": meta.get("experiment_name"),
            "status": _status(meta, state.get("alive")),
            "strategy": (meta.get("strategy") or {}).get("name") or (meta.get("strategy") or {}).get("class"),
            "trials": sum(counts.values()),
            "succeeded": counts.get("SUCCEEDED", 0),
            "failed": counts.get("FAILED", 0),
            "best": meta.get("best"),
            "created": meta.get("created"),
            "heartbeat": state.get("heartbeat"),
            "holder": state.get("holder"),
        })
    return rows


def format_list(rows: list[dict[str, Any]], table: Any) -> str:
    """The ``nascore list`` table of non-empty ``rows`` (from :func:`experiments_summary`)."""
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["id"], "-", "DAMAGED" if "damaged" in r["error"] else "UNREADABLE", "-", "-", "-",
                         r["error"].splitlines()[0]])
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
        state = liveness(store.root, meta)
    config = meta.get("config", {})
    ranked = _rank(trials, config.get("optimize_mode") or "maximize")
    return {
        "id": experiment_id,
        "path": str(Path(experiment_dir) / experiment_id),
        "name": meta.get("experiment_name"),
        "status": _status(meta, state["alive"]),
        "holder": state["holder"],
        "heartbeat": state["heartbeat"],
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
        f"  status:   {_status_line(detail)}",
        f"  path:     {detail['path']}",
        f"  created:  {_when(detail['created'])}   elapsed: {detail['elapsed'] or 0:.1f}s",
        f"  strategy: {strategy.get('name') or strategy.get('class') or '-'}   engine: {config.get('engine')}   "
        f"format: {config.get('format')}   optimize: {config.get('optimize_mode')}",
        "",
        "Best:",
    ]
    if detail["best"]:
        for t in detail["best"]:
            others = ", ".join(f"{name}={_metric(_number(value))}" for name, value in (t["metrics"] or {}).items()
                               if name != "default" and _number(value) is not None)
            lines.append(f"  trial {t['id']}: {_metric(t['metric'])}  {json.dumps(t['sample'])}"
                         + (f"  ({others})" if others else ""))
    else:
        lines.append("  no successful trial")
    if show_all and detail["trials"]:
        lines += ["", "Trials:"]
        extra = other_metrics(detail["trials"])
        rows = []
        for t in detail["trials"]:
            note = json.dumps(t["sample"]) if t["status"] != "FAILED" else (t["error"] or "").strip().splitlines()[0][:100]
            duration = "-" if t["duration"] is None else f"{t['duration']:.2f}s"
            values = [_metric(_number((t["metrics"] or {}).get(name))) for name in extra]
            rows.append([str(t["id"]), t["status"], _metric(t["metric"]), *values, duration, note])
        lines.append(table(["ID", "STATUS", "METRIC", *(name.upper() for name in extra), "TIME", "SAMPLE / ERROR"], rows))
    return "\n".join(lines)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def other_metrics(trials: list[dict[str, Any]], limit: int = 6) -> list[str]:
    """The numeric metrics the trials recorded besides the main one (``"default"``), in first-seen order."""
    names: list[str] = []
    for t in trials:
        for name, value in (t.get("metrics") or {}).items():
            if name != "default" and name not in names and _number(value) is not None:
                names.append(name)
    return names[:limit]
