"""Every built-in format passes nascore's format conformance suite (nascore.testing.formats)."""

from __future__ import annotations

from nascore.testing.formats import FormatConformance


class TestSimplified(FormatConformance):
    format_name = "simplified"
    # The reference of the other formats; it is compared with the raw format here.
    reference_formats = ("raw",)


class TestRaw(FormatConformance):
    # Models are copies of the space object with its weights: they ship with cloudpickle, not as payloads.
    format_name = "raw"
    supports_payload = False


class TestGraph(FormatConformance):
    format_name = "graph"
