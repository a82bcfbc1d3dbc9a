"""Files the phone keeps: where its state lives, and the PIN file."""

from __future__ import annotations

import os
from pathlib import Path

from cardio import errors

__all__ = ["default_state_dir", "read_pin"]


def default_state_dir() -> Path:
    """``/var/lib/simsync`` as root, else ``$XDG_STATE_HOME/simsync`` (~/.local/state/simsync)."""
    if os.geteuid() == 0:
        return Path("/var/lib/simsync")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "simsync"


def read_pin(path: Path) -> str:
    """The PIN on the first line of ``path`` (4-8 digits).

    The error never shows the file's content: it may be a real PIN with a typo.
    """
    try:
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise errors.InvalidRequest(f"cannot read PIN file {path}: {reason}") from exc
    pin = lines[0].strip() if lines else ""
    if not (4 <= len(pin) <= 8 and pin.isascii() and pin.isdigit()):
        raise errors.InvalidRequest(f"PIN file {path} must hold a PIN of 4-8 digits")
    return pin
