"""`simsync pda check`: which files the store sets aside and why, without writing anything.

The same scan a sync runs (pda.vdir.VdirStore), with the status table in memory
and no store-id marker made, so checking a vdir another tool owns leaves no
trace in it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from .store import BadContact, StoreIOError
from .vdir import STORE_ID_NAME, VdirStore

__all__ = ["check_vdir"]


class _ReadOnlyVdir(VdirStore):
    """A VdirStore that reads only: every file parsed, nothing written, nothing logged."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, status_db=":memory:")

    def _load_store_id(self) -> str:
        if not self.path.is_dir():
            raise StoreIOError(f"{self.path} is not a directory")
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return (self.path / STORE_ID_NAME).read_text(encoding="ascii").strip()
        return ""

    def _log_new(self, bad: list[BadContact]) -> None:
        pass  # the caller prints the list itself


def check_vdir(path: Path) -> tuple[int, list[BadContact]]:
    """(contacts readable, files set aside, by path) of the vdir at `path`; StoreIOError."""
    store = _ReadOnlyVdir(path)
    contacts = store.scan()
    return len(contacts), sorted(store.bad_files, key=lambda b: b.path)
