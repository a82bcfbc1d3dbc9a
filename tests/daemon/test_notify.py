"""daemon.notify through a real bound sd_notify socket (SO_PASSCRED: the sender's PID)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.notify import MAX_OWED, Notifier
from tests.fixtures.sdnotify import NotifySocket


def test_without_notify_socket_every_call_is_a_quiet_no_op() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    with capture_logs() as logs:
        assert n.ready("up") is False
        assert n.status("x") is False
        assert n.ping() is False
    assert logs == []
    assert n.watchdog_interval is None


def test_ready_status_stopping_arrive_with_our_pid(notify_socket: NotifySocket) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.address})
    assert n.ready("card present, idle")
    assert n.status("syncing with pda1\nsecond line")
    assert n.stopping()
    got = [notify_socket.receive(), notify_socket.receive(), notify_socket.receive()]
    n.close()
    assert {m.pid for m in got} == {os.getpid()}
    assert got[0].fields == {"READY": "1", "STATUS": "card present, idle"}
    # A newline would have started a forged field: STATUS stays one line.
    assert got[1].fields == {"STATUS": "syncing with pda1 second line"}
    assert got[2].fields == {"STOPPING": "1"}


def test_reloading_carries_monotonic_usec(notify_socket: NotifySocket) -> None:
    n = Notifier(notify_socket.address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading("re-reading config")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    msg = notify_socket.receive()
    n.close()
    assert msg.fields["RELOADING"] == "1"
    assert before <= int(msg.fields["MONOTONIC_USEC"]) <= after
    assert msg.fields["STATUS"] == "re-reading config"


def test_abstract_socket_name() -> None:
    sock = NotifySocket(abstract=True)
    try:
        assert sock.address.startswith("@")
        n = Notifier(sock.address)
        assert n.ready()
        assert sock.receive().fields == {"READY": "1"}
        n.close()
    finally:
        sock.close()


def test_a_missing_socket_is_logged_once_and_never_raises(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "gone.sock"))
    with capture_logs() as logs:
        assert n.ready() is False
        assert n.ping() is False  # same error: not logged again
    assert [e["event"] for e in logs] == ["sd_notify_failed"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["socket"] == str(tmp_path / "gone.sock")
    assert logs[0]["errno"] == "ENOENT"
    assert logs[0]["fields"] == ["WATCHDOG"] or logs[0]["fields"] == ["READY"]

    # The supervisor comes back: delivery resumes and the recovery is said.
    sock = NotifySocket(tmp_path / "gone.sock")
    try:
        with capture_logs() as logs:
            assert n.status("back")
        assert [e["event"] for e in logs] == ["sd_notify_recovered"]
        assert sock.receive().fields == {"STATUS": "back"}
    finally:
        n.close()
        sock.close()


def test_unsupported_address_is_logged_not_raised() -> None:
    n = Notifier("vsock:2:1234")
    with capture_logs() as logs:
        assert n.ready() is False
    assert logs[0]["event"] == "sd_notify_failed"
    assert logs[0]["errno"] == "EAFNOSUPPORT"


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "self"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], interval: float | None
) -> None:
    env = {k: str(os.getpid()) if v == "self" else v for k, v in env.items()}
    n = Notifier.from_env({"NOTIFY_SOCKET": "@x", **env})
    assert n.watchdog_interval == interval


async def test_watchdog_without_usec_returns_at_once(notify_socket: NotifySocket) -> None:
    n = Notifier(notify_socket.address)
    await asyncio.wait_for(n.watchdog(), 5)  # returns instead of pinging forever
    assert notify_socket.pending() == []


async def test_watchdog_cadence_and_silence_while_the_loop_is_blocked(
    notify_socket: NotifySocket,
) -> None:
    usec = 100_000  # 0.1 s: pings every 0.05 s
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": str(usec)})
    start = time.monotonic()
    task = asyncio.create_task(n.watchdog())
    try:
        pings = [await notify_socket.areceive() for _ in range(4)]
        assert all(m.fields == {"WATCHDOG": "1"} and m.pid == os.getpid() for m in pings)
        # Never faster than every half period: ping k is sent no earlier than k-1 sleeps
        # after the start (a lower bound, so a slow machine cannot break it; asyncio may
        # wake up to one clock resolution early per sleep).
        slack = 4 * (time.get_clock_info("monotonic").resolution + 0.001)
        assert pings[-1].at - start >= 3 * usec / 2e6 - slack

        notify_socket.pending()
        # A callback that blocks the event loop (what the watchdog exists to catch): for
        # five ping periods nothing may reach the socket.
        time.sleep(5 * usec / 2e6)  # noqa: ASYNC251 - the blocked loop is the point
        assert notify_socket.pending() == []

        # Once the loop runs again, so do the pings.
        assert (await notify_socket.areceive()).fields == {"WATCHDOG": "1"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        n.close()


def unread_socket(tmp_path: Path) -> tuple[socket.socket, Notifier]:
    """A bound notify socket nobody reads yet (a supervisor busy for a while), and a
    notifier sending to it."""
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.setblocking(False)
    return receiver, Notifier(str(path))


def fill(n: Notifier) -> int:
    """Ping until the unread queue is full (net.unix.max_dgram_qlen datagrams) and the
    non-blocking sender is refused at once; how many pings went in."""
    pings = 0
    while n.ping():
        pings += 1
        assert pings < 10_000
    return pings


async def test_a_state_change_refused_by_a_full_queue_is_sent_late_not_lost(
    tmp_path: Path,
) -> None:
    receiver, n = unread_socket(tmp_path)
    try:
        with capture_logs() as logs:
            pings = fill(n)
            assert n.ready("idle") is False  # refused now: owed
            assert n.status("outdated by the next") is False  # not owed
            assert n.stopping() is False  # owed, behind READY
        assert [(e["event"], e["fields"]) for e in logs] == [
            ("sd_notify_failed", ["WATCHDOG"]),  # once for the full queue
            ("sd_notify_owed", ["READY", "STATUS"]),
            ("sd_notify_owed", ["STOPPING"]),
        ]
        queued = [receiver.recv(4096) for _ in range(pings)]
        assert set(queued) == {b"WATCHDOG=1"}
        # The supervisor reads again: the retry from the event loop brings both, in order.
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(20):
            late = [await loop.sock_recv(receiver, 4096) for _ in range(2)]
        assert late == [b"READY=1\nSTATUS=idle", b"STOPPING=1"]
        assert n.status("then as ever")
        assert await loop.sock_recv(receiver, 4096) == b"STATUS=then as ever"
    finally:
        n.close()
        receiver.close()


def test_without_an_event_loop_what_is_owed_goes_before_the_next_datagram(
    tmp_path: Path,
) -> None:
    receiver, n = unread_socket(tmp_path)
    try:
        pings = fill(n)
        assert n.reloading() is False
        for _ in range(pings):
            receiver.recv(4096)
        assert n.status("reloaded")
        assert receiver.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert receiver.recv(4096) == b"STATUS=reloaded"
    finally:
        n.close()
        receiver.close()


def test_a_state_change_after_one_owed_is_owed_too_even_if_the_socket_is_gone(
    tmp_path: Path,
) -> None:
    # READY is owed to a full queue; then the supervisor's socket goes away and STOPPING
    # comes: it must wait behind READY, not vanish. Once a socket is back, both go first.
    receiver, n = unread_socket(tmp_path)
    try:
        fill(n)
        assert n.ready() is False
        receiver.close()
        (tmp_path / "notify.sock").unlink()
        assert n.stopping() is False  # refused for another reason: still owed
        receiver, _ = unread_socket(tmp_path)
        assert n.status("back")
        got = [receiver.recv(4096) for _ in range(3)]
        assert got == [b"READY=1", b"STOPPING=1", b"STATUS=back"]
    finally:
        n.close()
        receiver.close()


def test_a_supervisor_that_never_reads_costs_at_most_max_owed_state_changes(
    tmp_path: Path,
) -> None:
    receiver, n = unread_socket(tmp_path)
    try:
        fill(n)
        with capture_logs() as logs:
            for _ in range(MAX_OWED + 5):
                assert n.reloading() is False
        events = [e["event"] for e in logs]
        assert events.count("sd_notify_owed") == MAX_OWED
        assert events.count("sd_notify_dropped") == 5
    finally:
        n.close()
        receiver.close()
