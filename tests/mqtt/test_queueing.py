"""Joining, the bound, cancel of a queued and of a running sync, a burst of 1,000."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from pda.node import PdaServer
from syncproto import Done, Prepared
from tests.e2e.harness import World
from tests.fixtures.mosquitto import Broker
from tests.mqtt.observer import Observer
from tests.mqtt.rig import ROOT, DaemonProc, Gate
from tests.mqtt.test_errors import error, started

STATUS = f"{ROOT}/status"
REQUEST = f"{ROOT}/sync/request"
CANCEL = f"{ROOT}/sync/cancel"
RESULT = f"{ROOT}/sync/result"
PROGRESS = f"{ROOT}/sync/progress"


def names(d: Mapping[Any, tuple[str, Any]]) -> Counter[str]:
    return Counter(v[0] for v in d.values())


async def test_duplicates_join_each_id_answered_once_and_the_bound_says_busy(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    pda.add("Carol", "+4433333")
    _proc, obs = await started(world, broker, daemon, "[daemon]\nmax_waiting = 3\n")
    try:
        assert pda.server is not None
        async with pda.server._lock:  # the PDA is busy: the first sync waits
            for rid in ("j1", "j2", "j2", "j3"):  # j2 twice: a QoS 1 redelivery
                obs.publish(REQUEST, {"id": rid, "pda": "pda1"})
            obs.publish(REQUEST, {"id": "j4", "pda": "pda1"})
            # Three ids wait already: j4 is refused at once, while the sync still waits.
            busy = await obs.expect(RESULT, id="j4")
            assert error(busy) == "busy"
            assert "max_waiting" in busy["error"]["message"]
            assert obs.count(RESULT) == 1
        results = [await obs.expect(RESULT, id=rid) for rid in ("j1", "j2", "j3")]
        assert all(r["ok"] for r in results)
        # One sync, three answers: the same run, down to the APDU.
        assert len({(r["started_at"], r["apdus"], r["duration_ms"]) for r in results}) == 1
        assert results[0]["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
        assert names(world.card.records()) == Counter({"Carol": 1})
        assert pda.server.syncs == 1
        # Everyone waiting saw progress under their own id.
        assert {m.json()["id"] for m in obs.messages if m.topic == PROGRESS} == {"j1", "j2", "j3"}
        obs.publish(REQUEST, {"id": "fence", "pda": "pda1"})
        assert (await obs.expect(RESULT, id="fence"))["mode"] == "fast"
        counts = Counter(m.json()["id"] for m in obs.messages if m.topic == RESULT)
        assert counts == Counter({"j1": 1, "j2": 1, "j3": 1, "j4": 1, "fence": 1})
    finally:
        obs.close()


async def test_cancel_queued_then_running_nothing_committed(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    world.card.write(1, "Alice", "+4911111")
    pda1 = await world.add_pda("pda1")
    pda2 = await world.add_pda("pda2")
    pda1.add("Carol", "+4433333")
    _proc, obs = await started(world, broker, daemon)
    try:
        assert pda1.server is not None
        assert pda2.server is not None
        with structlog.testing.capture_logs() as logs:
            await cancel_queued_then_running(obs, pda1.server)
        # The PDA heard why: an Abort with "cancelled", not a bare close.
        ended = [e for e in logs if e["event"] == "sync ended early"]
        assert len(ended) == 1
        assert "phone aborted: cancelled" in ended[0]["error"]
        assert pda2.server.syncs == 0  # the cancelled queued sync never ran
        assert names(world.card.records()) == Counter({"Alice": 1, "Carol": 1})
        assert names(pda1.contacts()) == Counter({"Alice": 1, "Carol": 1})
        assert obs.count(RESULT) == 3
    finally:
        obs.close()


async def cancel_queued_then_running(obs: Observer, server: PdaServer) -> None:
    """Cancel a queued request, then the running one, then sync again: it is slow."""
    async with server._lock:
        obs.publish(REQUEST, {"id": "run", "pda": "pda1"})
        obs.publish(REQUEST, {"id": "queued", "pda": "pda2"})
        obs.publish(CANCEL, {"id": "queued"})
        gone = await obs.expect(RESULT, id="queued")
        assert error(gone) == "cancelled"
        assert "before it ran" in gone["error"]["message"]
        obs.publish(CANCEL, {"id": "run"})
        stopped = await obs.expect(RESULT, id="run")
    assert error(stopped) == "cancelled"
    assert stopped["pda"] == "pda1"
    # A cancel for an id that is not pending any more changes nothing.
    obs.publish(CANCEL, {"id": "run"})
    obs.publish(REQUEST, {"id": "again", "pda": "pda1"})
    again = await obs.expect(RESULT, id="again")
    assert again["ok"], again["error"]
    assert again["mode"] == "slow"  # the cancelled sync left no anchor behind


async def test_cancel_after_the_card_writes_commits_nothing_and_loses_nothing(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    world.card.write(1, "Alice", "+4911111")
    pda = await world.add_pda("pda1")
    _proc, obs = await started(world, broker, daemon)
    try:
        obs.publish(REQUEST, {"id": "base"})
        assert (await obs.expect(RESULT, id="base"))["ok"]
        pda.add("Zoe", "+4912")
        gate = Gate(pda, Prepared)
        obs.publish(REQUEST, {"id": "cut"})
        await gate.reached.wait()  # the phone wrote Zoe to the card and waits for Prepared
        obs.publish(CANCEL, {"id": "cut"})
        cut = await obs.expect(RESULT, id="cut")
        assert error(cut) == "cancelled"
        gate.release()
        obs.publish(REQUEST, {"id": "next"})
        nxt = await obs.expect(RESULT, id="next")
        assert nxt["ok"], nxt["error"]
        assert names(world.card.records()) == Counter({"Alice": 1, "Zoe": 1})
        assert names(pda.contacts()) == Counter({"Alice": 1, "Zoe": 1})
        obs.publish(REQUEST, {"id": "idle"})
        idle = await obs.expect(RESULT, id="idle")
        assert idle["mode"] == "fast"
        assert idle["to_card"] == idle["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
    finally:
        obs.close()


async def test_cancel_during_the_commit_lets_it_finish(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    pda.add("Zoe", "+4912")
    proc, obs = await started(world, broker, daemon)
    try:
        gate = Gate(pda, Done)
        obs.publish(REQUEST, {"id": "late"})
        await gate.reached.wait()  # STORESYNC went to the card: the commit is under way
        obs.publish(CANCEL, {"id": "late"})
        # Requests are handled in order: this one's answer means the cancel was read.
        obs.publish(REQUEST, {"id": "fence", "mode": 5})
        assert error(await obs.expect(RESULT, id="fence")) == "bad_request"
        gate.release()
        # The cancel could not overtake the commit; the result tells the truth.
        late = await obs.expect(RESULT, id="late")
        assert late["ok"], late["error"]
        assert names(world.card.records()) == Counter({"Zoe": 1})
        proc.signal(signal.SIGTERM)
        assert await proc.exited() == 0
        assert "the commit finishes" in proc.output()
    finally:
        obs.close()


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def test_burst_of_1000_requests_all_answered_with_bounded_memory(
    world: World, mosquitto: Callable[..., Broker], daemon: Callable[..., DaemonProc]
) -> None:
    broker = mosquitto()
    pda = await world.add_pda("pda1")
    proc, obs = await started(world, broker, daemon)
    try:
        assert pda.server is not None
        obs.publish(REQUEST, {"id": "warm"})
        assert (await obs.expect(RESULT, id="warm"))["ok"]
        before = rss_kib(proc.pid)
        rounds = []
        for burst in range(2):
            ids = [f"b{burst}-{i}" for i in range(1000)]
            async with pda.server._lock:
                for i, rid in enumerate(ids):
                    # Valid requests, malformed ones and unknown PDAs, as a flood would be.
                    if i % 10 == 7:
                        obs.publish(REQUEST, f'{{"id": "{rid}", "mode": 5}}')
                    elif i % 10 == 8:
                        obs.publish(REQUEST, {"id": rid, "pda": "ghost"})
                    else:
                        obs.publish(REQUEST, {"id": rid})
                # Everything past the bound (100 waiting) is answered while the sync waits.
                last = await obs.expect(RESULT, id=ids[-1], within=60)
            results = {rid: await obs.expect(RESULT, id=rid, within=60) for rid in ids[:-1]}
            results[ids[-1]] = last
            codes = Counter("ok" if r["ok"] else r["error"]["code"] for r in results.values())
            assert codes["bad_request"] == 100
            assert codes["unknown_pda"] == 100
            assert codes["ok"] == 100  # one sync, joined by the first 100 valid ids
            assert codes["busy"] == 700
            assert sum(codes.values()) == 1000
            rounds.append(rss_kib(proc.pid))
        print(f"daemon memory KiB: before {before}, after each burst of 1000: {rounds}")
        # The second burst finds every buffer the first one grew: no growth beyond noise.
        assert rounds[1]["VmHWM"] - rounds[0]["VmHWM"] < 2048
        assert rounds[0]["VmHWM"] - before["VmHWM"] < 16384
    finally:
        obs.close()
