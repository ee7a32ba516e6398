"""``nascore report EXP --html FILE``: the dashboard's views of one experiment as one self-contained HTML file.

The file holds the page's script and style, the plotting library and every answer the page would ask
the server for (:meth:`~nascore.dashboard.data.DashboardData.snapshot`), so it opens offline, from
a mail or in a notebook (``IPython.display.IFrame``), with no server and nothing to install. It is
the dashboard frozen at the moment it was written: it does not update. Needs no extra dependency.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nascore.dashboard import STATIC_DIR
from nascore.dashboard.data import DashboardData

__all__ = ["report_html", "write_report"]

_CSS_LINK = '<link rel="stylesheet" href="static/app.css">'
_VENDOR = '<script src="static/vendor/echarts.min.js"></script>'
_APP = '<script src="static/app.js"></script>'


def _inline_script(text: str) -> str:
    # "</script" cannot appear inside a script element; "<\/script" means the same in JavaScript strings and regexes.
    return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def report_html(experiment_dir: str | Path, experiment_id: str, *, code_limit: int = 20) -> str:
    """The self-contained HTML page of the experiment ``experiment_id`` (read-only: nothing is written to the store)."""
    from nascore.dashboard.server import index_html  # needs no server library: only the page template

    data = DashboardData(experiment_dir)
    try:
        snapshot = data.snapshot(experiment_id, code_limit=code_limit)
    finally:
        data.close()
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    vendor = (STATIC_DIR / "vendor" / "echarts.min.js").read_text(encoding="utf-8")
    app = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    settings = {"mode": "static", "experiment": experiment_id, "data": snapshot}
    return index_html(settings, inline={
        _CSS_LINK: "<style>" + css + "</style>",
        _VENDOR: "<!-- Apache ECharts (Apache License 2.0; see nascore/dashboard/static/vendor/) -->\n" + _inline_script(vendor),
        _APP: _inline_script(app),
    })


def write_report(path: str | Path, experiment_dir: str | Path, experiment_id: str, *, code_limit: int = 20) -> Path:
    """Write :func:`report_html` to ``path`` (whole or not at all: written beside it, then renamed)."""
    path = Path(path)
    page = report_html(experiment_dir, experiment_id, code_limit=code_limit)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(partial, 0o644)  # a file to share, not a private one as mkstemp makes it
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
