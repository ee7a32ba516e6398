"""Why a trial cannot run where it was sent: the ``abort`` reason engines give for a trial folder they cannot write.

A trial folder that cannot be created, or a log that cannot be opened or written (read-only
folder, full disk), is a fault of the place the trial runs, not of the trial: engines emit
:meth:`nascore.engine.TrialEvent.abort` with :func:`cannot_write` as its reason, the experiment
stops with it, and the trial runs again when the experiment is resumed after the fix.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["cannot_write"]


def cannot_write(trial_id: int, folder: Path | str, exc: OSError) -> str:
    """The reason of the ``abort`` event of trial ``trial_id`` whose ``folder`` failed with ``exc``."""
    return (
        f"cannot write trial {trial_id}'s folder {folder}: {exc.strerror or exc}; make it writable "
        "(or free disk space) and resume the experiment"
    )
