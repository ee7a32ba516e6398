"""The nascore-formats distribution registers its formats through the entry point."""

from __future__ import annotations

from nascore.plugin import get_plugins
from nascore_formats import GraphFormat, RawFormat, SimplifiedFormat


def test_formats_are_registered_by_name():
    formats = get_plugins().formats
    assert formats.get("simplified") is SimplifiedFormat and formats.get("raw") is RawFormat
    assert formats.get("graph") is GraphFormat
    assert all(formats.registration(name).distribution == "nascore-formats" for name in ("simplified", "raw", "graph"))
