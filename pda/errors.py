"""The root of the PDA room's errors: store, card state, engine, directory."""

from __future__ import annotations

__all__ = ["PdaError"]


class PdaError(Exception):
    """Anything the PDA peer refuses or fails at; subclasses say which part and why."""
