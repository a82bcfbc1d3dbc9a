"""A model of spec/card.md section 4 built from the spec's words, not the card's bookkeeping.

The model keeps an ordered log of every UPDATE RECORD: record, channel, content
before and after, and which session was open on which channel at that moment.
A partner's baseline is computed at its STORESYNC straight from the spec: "the
card as that partner knew it after its last STORESYNC: the content then, minus
the writes by others during that session". A write is the session's own when it
was made on the session's channel while that very session was open there; any
other write during the session is by others. Undoing the writes by others leaves,
for each record, what the session last wrote to it, or else what it held when
the session began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ADDED, MODIFIED, DELETED = 0x01, 0x02, 0x03


@dataclass(frozen=True)
class Write:
    """One UPDATE RECORD as it happened, with the sessions open at that moment."""

    fid: int
    rec: int
    channel: int
    before: bytes
    after: bytes
    open: tuple[tuple[int, int], ...]  # (channel, session id) of every open session


@dataclass(frozen=True)
class OpenSession:
    """A session from NEWSYNC on: who, which EF, where, and where the log stood."""

    ident: int
    partner: bytes
    fid: int
    channel: int
    proposed: bytes
    start: int  # index of the first log entry made during the session
    changes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Baseline:
    """A partner's baseline: per-record content, where the log stood, the spec's slack."""

    content: Mapping[int, bytes]
    since: int  # index of the first log entry made after the STORESYNC
    slack: frozenset[int]  # records written by others during the committed session


def is_own(write: Write, session: OpenSession) -> bool:
    """A write is the session's own iff it came on the session's channel while it was open."""
    return write.channel == session.channel and dict(write.open).get(write.channel) == (
        session.ident
    )


def baseline_at_commit(
    log: Sequence[Write], session: OpenSession, now: Mapping[int, bytes]
) -> Baseline:
    """The partner's new baseline at a successful STORESYNC of ``session`` (log = all so far)."""
    during = [w for w in log[session.start :] if w.fid == session.fid]
    content: dict[int, bytes] = {}
    slack: set[int] = set()
    for rec, current in now.items():
        writes = [w for w in during if w.rec == rec]
        # The content then, minus the others' writes: the session's last write to the
        # record, or (no own write) what the record held when the session began.
        own = [w for w in writes if is_own(w, session)]
        if own:
            content[rec] = own[-1].after
        elif writes:
            content[rec] = writes[0].before
        else:
            content[rec] = current
        if any(not is_own(w, session) for w in writes):
            slack.add(rec)
    return Baseline(content, len(log), frozenset(slack))


def check_changes(
    fid: int,
    now: Mapping[int, bytes],
    empty: bytes,
    baseline: Baseline | None,
    log: Sequence[Write],
    changes: Sequence[tuple[int, int]],
) -> None:
    """Assert a frozen change list obeys section 4 against the partner's baseline."""
    recs = [r for _, r in changes]
    assert recs == sorted(set(recs)), "ascending, each record once"
    if baseline is None:  # no last sync object: every non-empty record, as added
        assert list(changes) == [(ADDED, r) for r, c in sorted(now.items()) if c != empty]
        return
    listed = {r: t for t, r in changes}
    written = {w.rec for w in log[baseline.since :] if w.fid == fid}
    for r, current in now.items():
        base = baseline.content[r]
        if base != current:
            assert r in listed, f"completeness: record {r} differs from the baseline"
    for r, t in listed.items():
        assert r in written or r in baseline.slack, f"precision: record {r} not written since"
        assert t in (ADDED, MODIFIED, DELETED), f"type of {r}: {t:02x} unknown"
        assert (t == DELETED) == (now[r] == empty), f"type of {r}: 03 iff empty now"
        if t == ADDED:
            assert baseline.content[r] == empty, f"type of {r}: 01 only if empty at the baseline"
