"""The root of the phone service's own errors (config, sync); card and link errors keep theirs."""

from __future__ import annotations

__all__ = ["DaemonError"]


class DaemonError(Exception):
    """A failure of the phone service itself; subclasses name the phase."""
