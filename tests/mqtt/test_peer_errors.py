"""The PDA's side of the error codes over a real broker: a peer that breaks the protocol,
a PDA that aborts with ``card_full``, and a full card (``ok``, counted as skipped)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from syncproto import Abort, Done
from syncproto.codec import encode
from syncproto.codes import ErrorCode
from tests.e2e.harness import Pda, World
from tests.fixtures.mosquitto import Broker
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, mqtt_table, write_config
from tests.mqtt.test_errors import error, started
from transports import FrameLink, TransportError

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
RESULT = f"{ROOT}/sync/result"


def answer_alert_with(pda: Pda, frame: bytes) -> None:
    """The PDA's server, after TLS, answers the phone's Alert with ``frame`` and then
    only listens until the phone hangs up (a peer that is not a correct simsync PDA)."""
    assert pda.server is not None

    async def session(link: FrameLink) -> None:
        await link.recv()  # the Alert
        await link.send(frame)
        with contextlib.suppress(TransportError, TimeoutError):
            async with asyncio.timeout(20):
                while True:
                    await link.recv()

    pda.server._session = session  # type: ignore[method-assign]


async def test_a_pda_that_breaks_the_protocol_or_aborts(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, {"id": "first"})
        assert (await obs.expect(RESULT, id="first"))["ok"]
        assert pda.server is not None
        real = pda.server._session
        cases = {
            "garbage": (b"\xffnot CBOR at all", ErrorCode.PROTOCOL_ERROR, "malformed CBOR"),
            "out-of-order": (encode(Done(0, 0, 0, 0, 0)), ErrorCode.PROTOCOL_ERROR, "Done"),
            # A code that is not the PDA's to give (the phone's own PIN code) is a protocol error.
            "foreign-code": (
                encode(Abort(ErrorCode.PIN_REJECTED, "not mine to say")),
                ErrorCode.PROTOCOL_ERROR,
                "(pin_rejected)",
            ),
            # A PDA may refuse a sync with card_full (ours counts such contacts as skipped
            # instead): the daemon passes its word on.
            "pda-says-full": (
                encode(Abort(ErrorCode.CARD_FULL, "no room for 3 contacts")),
                ErrorCode.CARD_FULL,
                "no room for 3 contacts",
            ),
        }
        for rid, (frame, code, words) in cases.items():
            answer_alert_with(pda, frame)
            obs.publish(REQUEST, {"id": rid})
            res = await obs.expect(RESULT, id=rid)
            assert error(res) == code, res
            assert words in res["error"]["message"], res
            assert res["to_card"] == res["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        pda.server._session = real  # type: ignore[method-assign]

        # Nothing of the broken syncs was committed: the next one is fast and complete.
        pda.add("Zoe", "+4912")
        obs.publish(REQUEST, {"id": "after"})
        after = await obs.expect(RESULT, id="after")
        assert after["ok"], after["error"]
        assert after["mode"] == "fast"
        assert after["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
        assert sorted(n for n, _ in world.card.records().values()) == ["Carol", "Zoe"]
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
    finally:
        obs.close()


async def test_a_full_card_is_ok_with_the_rest_skipped_not_card_full(
    tmp_path: Path, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    world = World(tmp_path, records=3)
    try:
        world.card.write(1, "On card", "+1")
        pda = await world.add_pda("pda1")
        for i in range(4):
            pda.add(f"New {i}", f"+9{i}")
        proc = daemon(write_config(world, mqtt_table(broker, world.tmp)))
        obs = await Observer.connect(broker, f"{ROOT}/#")
        try:
            await obs.expect(STATUS, state="online")
            obs.publish(REQUEST, {"id": "full"})
            res = await obs.expect(RESULT, id="full")
            assert res["ok"], res["error"]
            assert res["to_card"]["added"] == 2  # records 2 and 3
            assert res["skipped"] == 2
            assert len(world.card.records()) == 3
            assert len(pda.contacts()) == 5  # nothing lost: the two wait on the PDA
            proc.signal(signal.SIGTERM)
            assert await proc.exited() == 0
        finally:
            obs.close()
    finally:
        await world.close()
