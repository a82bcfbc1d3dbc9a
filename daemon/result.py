"""The result of one sync: spec/mqtt.md's result object as a typed value.

``run_sync`` returns a ``SyncResult``; ``to_json()`` gives the spec's object
byte for byte (key order included), which `simsync sync --json` prints and the
daemon publishes on ``ROOT/sync/result``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncproto.codes import ErrorCode

__all__ = ["Counts", "SyncFailure", "SyncResult", "format_result"]


@dataclass(frozen=True, slots=True)
class Counts:
    """Contacts added, modified and deleted on one side."""

    added: int = 0
    modified: int = 0
    deleted: int = 0

    def to_json(self) -> dict[str, int]:
        return {"added": self.added, "modified": self.modified, "deleted": self.deleted}


@dataclass(frozen=True, slots=True)
class SyncFailure:
    """Why a sync did not finish: a code of spec/mqtt.md and a message for people."""

    code: ErrorCode
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One sync's outcome, also on failure (then ``error`` says why)."""

    id: str | None
    pda: str | None
    mode: str | None = None
    to_pda: Counts = field(default_factory=Counts)
    to_card: Counts = field(default_factory=Counts)
    conflicts: int = 0
    skipped: int = 0
    set_aside: int = 0
    apdus: int = 0
    duration_ms: int = 0
    started_at: str = ""
    finished_at: str = ""
    error: SyncFailure | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """spec/mqtt.md's result object."""
        return {
            "id": self.id,
            "pda": self.pda,
            "ok": self.ok,
            "mode": self.mode,
            "to_pda": self.to_pda.to_json(),
            "to_card": self.to_card.to_json(),
            "conflicts": self.conflicts,
            "skipped": self.skipped,
            "set_aside": self.set_aside,
            "apdus": self.apdus,
            "duration_ms": self.duration_ms,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": None if self.error is None else self.error.to_json(),
        }


def format_result(result: SyncResult) -> str:
    """A result object as a few lines for people."""
    if result.error is not None:
        who = f" with {result.pda}" if result.pda else ""
        return f"sync{who} FAILED ({result.error.code}): {result.error.message}"
    tp, tc = result.to_pda, result.to_card
    return (
        f"{result.mode} sync with {result.pda} in {result.duration_ms} ms, "
        f"{result.apdus} APDUs\n"
        f"  to PDA:  {tp.added} added, {tp.modified} modified, {tp.deleted} deleted\n"
        f"  to card: {tc.added} added, {tc.modified} modified, {tc.deleted} deleted\n"
        f"  conflicts: {result.conflicts}, skipped: {result.skipped}, "
        f"set aside: {result.set_aside}"
    )
