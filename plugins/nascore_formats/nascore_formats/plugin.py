"""Entry point of the ``nascore-formats`` distribution: registers its formats."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn
from nascore_formats.graph import GraphFormat
from nascore_formats.raw import RawFormat
from nascore_formats.simplified import SimplifiedFormat


@hookimpl
def nascore_register_formats(register: RegisterFn) -> None:
    register("simplified", SimplifiedFormat, description="space class + init arguments + sample; rebuilt per trial")
    register("raw", RawFormat, description="the space object itself; frozen copies keep its weights")
    register("graph", GraphFormat, description="torch.fx graph IR with mutations; trials run generated PyTorch code")
