"""Entry point of the ``nascore-ray`` distribution: registers the ``ray`` engine (Ray is imported only when it starts)."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn
from nascore_ray.engine import RayEngine


@hookimpl
def nascore_register_engines(register: RegisterFn) -> None:
    register("ray", RayEngine, description="runs trials on warm actors of a Ray cluster (local, 'auto' or an address)")
