"""Errors of the graph format: a model space that cannot become a graph says where and how to fix it."""

from __future__ import annotations

from nascore.errors import SearchSpaceError

__all__ = ["GraphConversionError"]


class GraphConversionError(SearchSpaceError):
    """A model space cannot be converted to the graph IR (untraceable code, unsupported construct).

    ``module_path`` is the path of the module in the space (``""`` for the space itself);
    ``filename`` and ``lineno`` point at the user code that failed, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        module_path: str | None = None,
        filename: str | None = None,
        lineno: int | None = None,
    ) -> None:
        super().__init__(message)
        self.module_path = module_path
        self.filename = filename
        self.lineno = lineno
