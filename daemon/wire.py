"""spec/mqtt.md's topics and daemon-made payloads, pure: what goes on the wire.

The result object is ``SyncResult.to_json()``; this module adds the status, the
event and the progress objects, and the result of a request that never ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from daemon.result import SyncFailure, SyncResult
from syncproto.codes import ErrorCode

__all__ = [
    "CardState",
    "EventType",
    "Topics",
    "dump",
    "event_payload",
    "failed",
    "now_iso",
    "progress_payload",
    "status_payload",
]

CardState = Literal["present", "absent", "blocked", "unknown"]
EventType = Literal["card-inserted", "card-removed", "pda-near", "pda-away"]


@dataclass(frozen=True)
class Topics:
    """The daemon's topics under ``root`` (ROOT in the spec)."""

    root: str

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def request(self) -> str:
        return f"{self.root}/sync/request"

    @property
    def cancel(self) -> str:
        return f"{self.root}/sync/cancel"

    @property
    def progress(self) -> str:
        return f"{self.root}/sync/progress"

    @property
    def result(self) -> str:
        return f"{self.root}/sync/result"

    @property
    def event(self) -> str:
        return f"{self.root}/event"

    def presence(self, pda: str) -> str:
        """``ROOT/pda/<name>/presence`` (retained ``near``/``away``): a simsync extension
        beyond spec/mqtt.md, the state topic of Home Assistant's presence binary_sensor.
        ``pda`` may be ``+`` for the subscription filter."""
        return f"{self.root}/pda/{pda}/presence"

    def presence_pda(self, topic: str) -> str | None:
        """The PDA name in a ``ROOT/pda/<name>/presence`` topic, or None for another topic."""
        head, tail = f"{self.root}/pda/", "/presence"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        name = topic[len(head) : -len(tail)]
        return name if name and "/" not in name else None


def now_iso() -> str:
    """Now, ISO-8601 UTC with milliseconds and a ``Z`` (as results carry it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dump(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (names stay readable: no \\u escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def status_payload(
    *,
    online: bool,
    version: str,
    card: CardState,
    busy: bool,
    last_sync: SyncResult | None,
) -> bytes:
    """``ROOT/status`` (retained); the offline form is also the Last Will."""
    return dump(
        {
            "state": "online" if online else "offline",
            "version": version,
            "card": card,
            "busy": busy,
            "last_sync": None if last_sync is None else last_sync.to_json(),
        }
    )


def event_payload(kind: EventType, *, pda: str | None = None, at: str | None = None) -> bytes:
    """``ROOT/event``."""
    obj: dict[str, Any] = {"type": kind}
    if pda is not None:
        obj["pda"] = pda
    obj["at"] = at or now_iso()
    return dump(obj)


def progress_payload(rid: str, phase: str, done: int, total: int) -> bytes:
    """``ROOT/sync/progress``."""
    return dump({"id": rid, "phase": phase, "done": done, "total": total})


def failed(
    rid: str | None,
    pda: str | None,
    code: ErrorCode,
    message: str,
    *,
    started_at: str | None = None,
) -> SyncResult:
    """The result of a request that did not run (or was stopped before its commit)."""
    end = now_iso()
    return SyncResult(
        id=rid,
        pda=pda,
        started_at=started_at or end,
        finished_at=end,
        error=SyncFailure(code, message),
    )
