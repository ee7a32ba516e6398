"""The web server of ``nascore dashboard``: the page, its files and a JSON API over :mod:`nascore.dashboard.data`.

Built on `Starlette <https://www.starlette.io>`__ served by `uvicorn <https://www.uvicorn.org>`__ (the
``dashboard`` extra): both small, typed and actively maintained, with no native code of their own;
Starlette's synchronous endpoints run in a thread pool, so a slow read never stalls the page's other
requests, and ``uvicorn.Server`` runs in a background thread for tests and notebooks
(:class:`DashboardServer`).

API (all read-only; JSON; errors as ``{"error": ...}`` with status 404 or 500):

- ``GET /api/experiments``: the experiment list;
- ``GET /api/experiments/{id}``: config, status, budget, strategy, space, counts;
- ``POST /api/experiments/{id}/changes`` with ``{"trial": N, "metric": M, "open": [ids]}``: what changed
  since those cursors (:meth:`~nascore.dashboard.data.DashboardData.changes`);
- ``GET /api/experiments/{id}/trials/{trial}``: one trial in full (error, log tail, metric events);
- ``GET /api/experiments/{id}/trials/{trial}/code``: a graph-format trial's generated code;
- ``GET /api/experiments/{id}/oneshot``: architecture weights over training and exported architectures.

Only requests naming the host the server is bound to (or ``localhost``) in their ``Host`` header are
answered, so a web page elsewhere cannot read the dashboard through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nascore.dashboard import DASHBOARD_EXTRA_HINT, STATIC_DIR
from nascore.dashboard.data import DashboardData
from nascore.errors import ExperimentNotFoundError, MissingDependencyError, NascoreError

__all__ = ["create_app", "DashboardServer", "serve", "require_server_dependencies", "index_html"]

_log = logging.getLogger(__name__)


def require_server_dependencies() -> None:
    """Raise :class:`~nascore.errors.MissingDependencyError` saying what to install when Starlette or uvicorn is missing."""
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingDependencyError(
            f"nascore dashboard needs {' and '.join(missing)}, which is not installed: {DASHBOARD_EXTRA_HINT} "
            "(`nascore report EXP --html FILE` writes the same views as one HTML file without it)"
        )


def index_html(settings: dict[str, Any], *, inline: dict[str, str] | None = None) -> str:
    """The page: ``static/index.html`` with ``settings`` for the script, and the files inlined if ``inline`` given."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("/*NASCORE_SETTINGS*/null", _script_json(settings))
    if inline is not None:
        for placeholder, text in inline.items():
            page = page.replace(placeholder, text)
    return page


def _script_json(value: Any) -> str:
    """JSON that can sit inside a ``<script>`` element."""
    return json.dumps(value, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def create_app(experiment_dir: str | Path, experiment_id: str | None = None, *, poll_ms: int = 2000,
               allowed_hosts: list[str] | None = None) -> Any:
    """The Starlette application of the dashboard over ``experiment_dir`` (opening ``experiment_id`` first, if given)."""
    require_server_dependencies()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    data = DashboardData(experiment_dir)
    settings = {"mode": "live", "experiment": experiment_id, "poll_ms": poll_ms, "experiment_dir": str(data.experiment_dir)}

    def answer(make: Any) -> Response:
        try:
            body = make()
        except ExperimentNotFoundError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except (NascoreError, OSError, ValueError) as exc:
            _log.warning("dashboard: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=500)
        return Response(json.dumps(body, allow_nan=False, default=str), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    def index(request: Request) -> Response:
        return HTMLResponse(index_html(settings), headers={"Cache-Control": "no-store"})

    def experiments(request: Request) -> Response:
        return answer(data.experiments)

    def experiment(request: Request) -> Response:
        return answer(lambda: data.experiment(request.path_params["exp"]))

    async def changes(request: Request) -> Response:
        try:
            body = await request.json()
            since_trial, since_metric = int(body.get("trial", 0)), int(body.get("metric", 0))
            open_ids = [int(i) for i in body.get("open", [])]
        except (ValueError, TypeError, AttributeError):
            return JSONResponse({"error": 'the body must be {"trial": int, "metric": int, "open": [int]}'}, status_code=400)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(
            answer, lambda: data.changes(request.path_params["exp"], since_trial, since_metric, open_ids))

    def trial(request: Request) -> Response:
        return answer(lambda: data.trial(request.path_params["exp"], request.path_params["trial"]))

    def code(request: Request) -> Response:
        return answer(lambda: data.code(request.path_params["exp"], request.path_params["trial"]))

    def oneshot(request: Request) -> Response:
        return answer(lambda: data.oneshot(request.path_params["exp"]))

    routes = [
        Route("/", index),
        Route("/api/experiments", experiments),
        Route("/api/experiments/{exp}", experiment),
        Route("/api/experiments/{exp}/changes", changes, methods=["POST"]),
        Route("/api/experiments/{exp}/trials/{trial:int}", trial),
        Route("/api/experiments/{exp}/trials/{trial:int}/code", code),
        Route("/api/experiments/{exp}/oneshot", oneshot),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(GZipMiddleware, minimum_size=2048)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            data.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.data = data
    return app


def _allowed_hosts(host: str) -> list[str] | None:
    if host in ("0.0.0.0", "::", ""):
        return None  # served to the network on purpose: any name may reach it
    return sorted({host, "localhost", "127.0.0.1", "[::1]"})


class DashboardServer:
    """The dashboard served from a background thread: ``with DashboardServer(dir) as server: server.url``.

    ``port=0`` picks a free port (:attr:`url` tells which).
    """

    def __init__(self, experiment_dir: str | Path, experiment_id: str | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, poll_ms: int = 2000) -> None:
        require_server_dependencies()
        import uvicorn

        self.host = host
        app = create_app(experiment_dir, experiment_id, poll_ms=poll_ms, allowed_hosts=_allowed_hosts(host))
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 30.0) -> DashboardServer:
        self._thread = threading.Thread(target=self._server.run, name="nascore-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise NascoreError(f"the dashboard did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        sockets = [s for server in getattr(self._server, "servers", []) for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(experiment_dir: str | Path, experiment_id: str | None = None, *, host: str = "127.0.0.1", port: int = 8080,
          poll_ms: int = 2000, on_ready: Any = None) -> None:
    """Serve the dashboard until interrupted (``nascore dashboard``); ``on_ready(url)`` is called once it listens."""
    server = DashboardServer(experiment_dir, experiment_id, host=host, port=port, poll_ms=poll_ms)
    server.start()
    if on_ready is not None:
        on_ready(server.url + (f"#/exp/{experiment_id}" if experiment_id else ""))
    try:
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(timeout=0.5)
    finally:
        server.stop()
