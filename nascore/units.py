"""Durations and sizes as users write them (``"90s"``, ``"2h"``, ``"512MB"``): one parser for every setting.

The experiment config, engine options and strategy options all accept the same spellings, through
:func:`parse_duration` and :func:`parse_size`; the options converter (:mod:`nascore.options`) uses them
for fields annotated with :data:`Duration` or :data:`Size`.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["Duration", "Size", "parse_duration", "parse_size", "format_size"]

#: The type of an option that is a duration: seconds, or a string such as ``"10m"``; held as float seconds.
Duration = float
#: The type of an option that is a size: bytes, or a string such as ``"4GB"``; held as int bytes.
Size = int

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a string such as ``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"`` (``None`` stays ``None``).

    :raises ValueError: not a duration, not finite, or not positive; the message shows what to write.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 600, '90s', '10m' or '2h', got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def parse_size(value: Any) -> int | None:
    """Bytes from a number of bytes or a string such as ``"512MB"``, ``"4GiB"``, ``"2g"`` (powers of 1024).

    :raises ValueError: not a size, not finite, or not positive; the message shows what to write.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a size, got {value!r}")
    if isinstance(value, (int, float)):
        size = float(value)
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    else:
        raise ValueError(f"expected a size such as 2147483648, '512MB' or '4GB', got {value!r}")
    if not math.isfinite(size):
        raise ValueError(f"a size must be a finite number, got {value!r}")
    if size <= 0:
        raise ValueError(f"a size must be positive, got {value!r}")
    return int(size)


def format_size(size: float) -> str:
    """``1536`` -> ``"1.5 KB"``: a size for messages, in powers of 1024 like :func:`parse_size`."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
