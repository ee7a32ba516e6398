"""The dashboard: a local web page over the experiment store, and the same views as one HTML file.

- :mod:`nascore.dashboard.data`: what the page shows, as JSON-ready data, read from the store
  read-only (standard library only; the HTML report uses it without the web server);
- :mod:`nascore.dashboard.server`: the web server of ``nascore dashboard`` (Starlette on uvicorn, the
  ``dashboard`` extra: ``pip install "nascore[dashboard]"``);
- :mod:`nascore.dashboard.report`: ``nascore report EXP --html FILE``, a self-contained HTML file;
- ``static/``: the page (plain JavaScript, no build step) and the plotting library it draws with
  (Apache ECharts, vendored with its license: the page works offline).

Importing this package needs nothing beyond nascore's own dependencies.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC_DIR", "DASHBOARD_EXTRA_HINT"]

#: The folder of the page's files (HTML, JavaScript, CSS and the vendored plotting library).
STATIC_DIR = Path(__file__).parent / "static"

#: What to install for ``nascore dashboard``.
DASHBOARD_EXTRA_HINT = 'pip install "nascore[dashboard]"'
