"""The phone tells the PDA why it gives up: an Abort with the right code, never a bare close.

A real ``PdaServer`` over loopback TCP + mutual TLS runs the real ``SyncEngine``; only one
frame it sends is replaced by one that breaks the protocol. The phone must answer with
``Abort(protocol_error)`` before it hangs up, the engine must end ``aborted`` by the
phone's word, and neither the PDA's anchors nor the card's sync object may move: the
next sync is fast and moves what the broken one did not.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.conversation import Conversation
from pda.engine import SyncEngine
from pda.node import PdaServer
from syncproto import (
    Abort,
    AlertReply,
    Committed,
    Done,
    Message,
    Mode,
    PdaOps,
    Prepared,
    Put,
    State,
    decode,
    encode,
)
from syncproto.codes import ErrorCode
from tests.e2e.harness import Pda, World, world
from transports import FrameLink, TransportError


class Tampered:
    """The next session, served by the real engine, with one frame replaced."""

    def __init__(self, pda: Pda, bad: dict[type, bytes | None]) -> None:
        server = pda.server
        assert server is not None
        self.engine = SyncEngine(server.store, server.state, fits=server.fits)
        self.late: list[object] = []  # what the phone sent after the session had ended
        self.ended = asyncio.Event()
        self._bad = bad
        server._session = self._session  # type: ignore[method-assign]

    async def _session(self, link: FrameLink) -> None:
        try:
            while True:  # until the phone hangs up
                async with asyncio.timeout(20):
                    frame = await link.recv()
                if self.engine.finished:
                    self.late.append(decode(frame))
                    continue
                for out in self.engine.handle(frame):
                    # The engine's own message of that type is replaced (None: dropped), once.
                    kind = type(decode(out))
                    sent = self._bad.pop(kind) if kind in self._bad else out
                    if sent is not None:
                        await link.send(sent)
        except TransportError:
            pass
        finally:
            self.ended.set()


async def synced_once(w: World) -> tuple[Pda, PdaServer]:
    """PDA pda1 with Carol, synced once; and its server."""
    pda = await w.add_pda("pda1")
    pda.add("Carol", "+4433333")
    assert (await w.sync("pda1"))["ok"]
    assert pda.server is not None
    return pda, pda.server


CASES = {
    # A record the card does not have (the Alert said 40).
    "op-beyond-card": (PdaOps, encode(PdaOps((Put(1, 99, "Mallory", "+1"),))), "beyond"),
    # The phone asks for a slow sync (it has an anchor): "fast" does not answer that.
    "mode-not-asked": (AlertReply, encode(AlertReply(Mode.FAST)), "does not answer"),
    "not-cbor": (PdaOps, b"\xffnot CBOR at all", "CBOR"),
}


@pytest.mark.parametrize("case", CASES)
async def test_a_protocol_error_gets_an_abort_and_moves_no_anchor(
    tmp_path: Path, case: str
) -> None:
    kind, frame, words = CASES[case]
    async with world(tmp_path) as w:
        w.card.write(1, "Alice", "+4911111")
        pda, server = await synced_once(w)
        real = server._session

        tampered = Tampered(pda, {kind: frame})
        pda.add("Zoe", "+4912")
        broken = await w.sync("pda1", "slow" if kind is AlertReply else "auto")
        await tampered.ended.wait()
        assert not broken["ok"]
        assert broken["error"]["code"] == ErrorCode.PROTOCOL_ERROR, broken
        assert words in broken["error"]["message"], broken

        engine = tampered.engine
        assert engine.session.state is State.ABORTED  # by the phone's word
        abort = engine.session.abort
        assert isinstance(abort, Abort)
        assert abort.code == ErrorCode.PROTOCOL_ERROR
        assert words in abort.message
        assert tampered.late == []  # one Abort, then the phone hung up
        assert engine.outcome is None
        alert = engine._alert
        assert alert is not None
        st = server.state.load(alert.iccid, alert.db)
        assert st.pending is None  # nothing prepared
        assert st.last == alert.last  # the anchor the card sent: unchanged

        server._session = real  # type: ignore[method-assign]
        after = await w.sync("pda1")
        assert after["ok"], after["error"]
        assert after["mode"] == "fast"  # the card's sync object did not move either
        assert after["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
        assert sorted(n for n, _ in w.card.records().values()) == ["Alice", "Carol", "Zoe"]


async def test_no_abort_back_to_a_pda_that_aborted(tmp_path: Path) -> None:
    """The PDA's own Abort ends the session: the phone hangs up without answering it."""
    async with world(tmp_path) as w:
        pda = await w.add_pda("pda1")
        pda.add("Carol", "+4433333")
        tampered = Tampered(pda, {PdaOps: encode(Abort(ErrorCode.INTERNAL, "disk gone"))})
        res = await w.sync("pda1")
        await tampered.ended.wait()
        assert res["error"]["code"] == ErrorCode.INTERNAL, res
        # The engine sent PdaOps as far as it knows: an Abort back would have ended it.
        assert tampered.engine.session.state is State.APPLYING
        assert w.card.records() == {}


@pytest.mark.parametrize(
    ("instead_of_done", "code"),
    [(None, ErrorCode.TIMEOUT), (encode(Prepared()), ErrorCode.PROTOCOL_ERROR)],
    ids=["silent", "wrong-message"],
)
async def test_an_abort_after_committed_undoes_nothing_and_the_next_sync_is_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instead_of_done: bytes | None, code: str
) -> None:
    """The phone also aborts after Committed, when Done does not come (docs/protocol.md).

    The card has taken STORESYNC and the PDA promoted its anchor on Committed, which
    came first on the link: the late Abort finds the PDA's session over and moves
    nothing. The phone's result says why it gave up; the next sync is fast.
    """
    async with world(tmp_path) as w:
        pda, server = await synced_once(w)
        real = server._session

        tampered = Tampered(pda, {Done: instead_of_done})
        pda.add("Zoe", "+4912")
        with monkeypatch.context() as patch:
            if instead_of_done is None:
                # The silent PDA: once this sync's Committed is out, the phone waits 0.2 s
                # for Done. Every earlier wait keeps its 120 s (Prepared waits on the
                # PDA's fsync), and so does every wait after this sync.
                sent = Conversation.send

                async def send(self: Conversation, msg: Message) -> None:
                    await sent(self, msg)
                    if isinstance(msg, Committed):
                        patch.setattr("daemon.conversation.MESSAGE_TIMEOUT", 0.2)

                patch.setattr(Conversation, "send", send)
            res = await w.sync("pda1")
        await tampered.ended.wait()
        assert res["error"]["code"] == code, res
        assert res["to_card"]["added"] == 1  # Zoe went to the card before the commit
        engine = tampered.engine
        assert engine.session.state is State.DONE  # it had promoted and sent Done
        assert engine.outcome is not None
        (late,) = tampered.late  # one Abort after the PDA's Done, then the phone hung up
        assert isinstance(late, Abort)
        assert late.code == code
        alert = engine._alert
        assert alert is not None
        st = server.state.load(alert.iccid, alert.db)
        assert (st.last, st.pending) == (alert.proposed, None)

        server._session = real  # type: ignore[method-assign]
        after = await w.sync("pda1")
        assert after["ok"], after["error"]
        assert after["mode"] == "fast"  # the card took STORESYNC: both ends hold one anchor
        assert after["to_card"] == after["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
