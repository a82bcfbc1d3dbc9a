"""The daemon-made payloads of spec/mqtt.md: status, event, progress, unrun results."""

from __future__ import annotations

import json

from daemon.result import SyncResult
from daemon.wire import Topics, event_payload, failed, progress_payload, status_payload
from syncproto.codes import ErrorCode


def test_topics() -> None:
    t = Topics("simsync/phone1")
    assert (t.status, t.request, t.cancel, t.progress, t.result, t.event) == (
        "simsync/phone1/status",
        "simsync/phone1/sync/request",
        "simsync/phone1/sync/cancel",
        "simsync/phone1/sync/progress",
        "simsync/phone1/sync/result",
        "simsync/phone1/event",
    )


def test_status_payload_key_order_and_last_sync() -> None:
    last = SyncResult(id="r1", pda="pda1", mode="fast")
    obj = json.loads(
        status_payload(online=True, version="1.0", card="present", busy=True, last_sync=last)
    )
    assert list(obj) == ["state", "version", "card", "busy", "last_sync"]
    assert obj["state"] == "online"
    assert obj["last_sync"] == last.to_json()
    off = json.loads(
        status_payload(online=False, version="1.0", card="unknown", busy=False, last_sync=None)
    )
    assert off == {
        "state": "offline",
        "version": "1.0",
        "card": "unknown",
        "busy": False,
        "last_sync": None,
    }


def test_event_and_progress() -> None:
    obj = json.loads(event_payload("card-removed", at="2026-01-01T00:00:00.000Z"))
    assert obj == {"type": "card-removed", "at": "2026-01-01T00:00:00.000Z"}
    near = json.loads(event_payload("pda-near", pda="pda1"))
    assert list(near) == ["type", "pda", "at"]
    assert near["at"].endswith("Z")
    assert json.loads(progress_payload("r1", "apply", 2, 5)) == {
        "id": "r1",
        "phase": "apply",
        "done": 2,
        "total": 5,
    }


def test_failed_result_of_a_request_that_never_ran() -> None:
    r = failed(None, None, ErrorCode.BAD_REQUEST, "payload is not JSON").to_json()
    assert r["id"] is None
    assert r["ok"] is False
    assert r["mode"] is None
    assert r["error"] == {"code": "bad_request", "message": "payload is not JSON"}
    assert r["started_at"] == r["finished_at"]
    assert r["duration_ms"] == 0
