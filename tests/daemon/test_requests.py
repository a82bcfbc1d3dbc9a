"""The request parser: payload bytes -> typed request or bad_request with a message."""

from __future__ import annotations

import pytest

from daemon.requests import (
    MAX_PAYLOAD,
    BadRequest,
    CancelRequest,
    SyncRequest,
    parse_cancel,
    parse_sync_request,
)


def test_full_request() -> None:
    req = parse_sync_request(b'{"id": "r1", "pda": "pda1", "mode": "slow"}')
    assert req == SyncRequest("r1", "pda1", "slow")


def test_defaults_unknown_keys_and_nulls() -> None:
    req = parse_sync_request(b'{"colour": "red", "pda": null, "mode": null}')
    assert isinstance(req, SyncRequest)
    assert req.pda is None
    assert req.mode == "auto"
    assert len(req.id) == 12
    other = parse_sync_request(b"{}")
    assert isinstance(other, SyncRequest)
    assert other.id != req.id


@pytest.mark.parametrize(
    ("payload", "rid", "words"),
    [
        (b"", None, "not JSON"),
        (b"sync please", None, "not JSON"),
        (b"\xff\xfe{}", None, "not UTF-8"),
        (b"[1, 2]", None, "an array"),
        (b'"r1"', None, "a string"),
        (b"null", None, "null"),
        (b"42", None, "a number"),
        (b'{"id": 7}', None, '"id" must be a string, not a number'),
        (b'{"id": ""}', None, "1-64 characters"),
        (b'{"id": "' + b"x" * 65 + b'"}', None, "not 65"),
        (b'{"id": "r2", "pda": 3}', "r2", '"pda" must be a PDA name'),
        (b'{"id": "r2", "pda": ""}', "r2", '"pda" must be a PDA name'),
        (b'{"id": "r3", "mode": "fastest"}', "r3", "not 'fastest'"),
        (b'{"id": "r3", "mode": true}', "r3", "not a boolean"),
        (b'{"id": "r4", "mode": ["slow"]}', "r4", "not an array"),
        (b"[" * 100_000, None, "at most"),
        (b"[" * 2000 + b"]" * 2000, None, "nested too deeply"),
    ],
)
def test_bad_requests_say_what_is_wrong(payload: bytes, rid: str | None, words: str) -> None:
    bad = parse_sync_request(payload)
    assert isinstance(bad, BadRequest)
    assert bad.id == rid
    assert words in bad.message


def test_id_of_64_characters_and_unicode_is_fine() -> None:
    rid = "é" * 64  # characters, not bytes
    req = parse_sync_request(('{"id": "' + rid + '"}').encode())
    assert isinstance(req, SyncRequest)
    assert req.id == rid


def test_payload_limit_is_exact() -> None:
    pad = b" " * (MAX_PAYLOAD - 2)
    assert isinstance(parse_sync_request(b"{" + pad + b"}"), SyncRequest)
    assert isinstance(parse_sync_request(b"{ " + pad + b"}"), BadRequest)


def test_cancel() -> None:
    assert parse_cancel(b'{"id": "r1", "why": "changed my mind"}') == CancelRequest("r1")
    for payload, words in [
        (b"{}", '"id" is missing'),
        (b'{"id": null}', '"id" is missing'),
        (b'{"id": 1}', "must be a string"),
        (b"r1", "not JSON"),
    ]:
        bad = parse_cancel(payload)
        assert isinstance(bad, BadRequest)
        assert bad.id is None
        assert words in bad.message
