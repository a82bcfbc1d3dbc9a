"""The serial link over real kernel ptys: URLs, device errors, noise, hang-ups, restarts."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import subprocess
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.fixtures.ptyline import Noise, PtyLine
from transports import (
    ConnectFailed,
    FrameLink,
    Listener,
    ListenFailed,
    TransportClosed,
    TransportSpecError,
    check_address,
    listen,
    open_transport,
)
from transports.serial_tty import describe_os_error, error_code, parse_serial_url

NOISE = Noise(corrupt=2e-4, drop=2e-4, dup=2e-4, garbage=1e-4)


@pytest.fixture
async def line() -> AsyncIterator[PtyLine]:
    quiet = PtyLine()
    try:
        yield quiet
    finally:
        await quiet.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("serial://dev/ttyS0", "three slashes"),
        ("serial:", "no absolute device path"),
        ("serial:///", "no absolute device path"),
        ("serial:///dev/ttyS0?baud=123", "baud must be one of"),
        ("serial:///dev/ttyS0?baud=fast", "baud must be one of"),
        ("serial:///dev/ttyS0?parity=even", "unknown parameter"),
        ("serial:///dev/ttyS0?baud=9600&baud=9600", "given twice"),
        ("serial:///dev/ttyS0?dead_after=0", "dead_after must be"),
        ("serial:///dev/ttyS0?dead_after=soon", "dead_after must be"),
        ("serial:///dev/ttyS0#x", "no fragment"),
        ("serial:///dev/ttyS0?baud", "malformed query"),
    ],
)
def test_malformed_serial_urls_are_refused_precisely(url: str, match: str) -> None:
    with pytest.raises(TransportSpecError, match=match):
        check_address(url)


def test_serial_urls_parse_with_defaults() -> None:
    address = parse_serial_url("serial:///dev/rfcomm0")
    assert (address.path, address.baud, address.dead_after) == ("/dev/rfcomm0", 115200, None)
    assert address.url == "serial:///dev/rfcomm0?baud=115200"
    slow = parse_serial_url("serial:///dev/ircomm0?baud=9600&dead_after=30")
    assert (slow.baud, slow.dead_after) == (9600, 30.0)
    assert slow.url == "serial:///dev/ircomm0?baud=9600&dead_after=30"


async def test_a_missing_device_is_named(tmp_path: Path) -> None:
    url = f"serial://{tmp_path}/rfcomm9"
    with pytest.raises(ConnectFailed, match=r"rfcomm9: no such device.*rfcomm bind"):
        await open_transport(url)


async def test_a_listener_waits_for_its_device_and_says_so(tmp_path: Path) -> None:
    # An RFCOMM tty exists only once the peer connected: serve must not need it at start.
    line = PtyLine(link=tmp_path / "rfcomm0", plugged=False)
    listener = None
    try:
        with capture_logs() as logs:
            listener = await listen(f"serial://{line.a}?baud=921600")
            line.plug_a()
            client, server = await asyncio.gather(
                open_transport(f"serial://{line.b}?baud=921600", timeout=10), listener.accept()
            )
        waiting = [e for e in logs if e["event"].startswith("serial device not there yet")]
        assert len(waiting) == 1
        assert "no such device" in waiting[0]["why"]
        assert any(e["event"] == "serial device open; waiting for a peer" for e in logs)
        await client.send(b"found you")
        assert await server.recv() == b"found you"
        await client.close()
        await server.close()
    finally:
        if listener is not None:
            await listener.close()
        await line.close()


async def test_a_peer_that_missed_the_listeners_hang_up_is_reset_at_once(
    tmp_path: Path,
) -> None:
    # The PDA's tty went away and came back; the phone's line stayed up. The phone's
    # next packet reaches a session that is over: an RST at once, not 10 s of silence.
    line = PtyLine(link=tmp_path / "rfcomm0")
    listener = await listen(f"serial://{line.a}?baud=921600")
    try:
        client, server = await asyncio.gather(
            open_transport(f"serial://{line.b}?baud=921600", timeout=10), listener.accept()
        )
        await client.send(b"before")
        assert await server.recv() == b"before"
        with capture_logs() as logs:
            line.unplug_a()
            with pytest.raises(TransportClosed, match="line hung up"):
                await server.recv()
            line.plug_a()
            await client.send(b"after")
            with pytest.raises(TransportClosed, match="reset the link"):
                await client.recv()
        assert any(e["event"].startswith("serial line hung up") for e in logs)
        await client.close()
        await server.close()
        again, served = await asyncio.gather(
            open_transport(f"serial://{line.b}?baud=921600", timeout=10), listener.accept()
        )
        await again.send(b"next phone")
        assert await served.recv() == b"next phone"
        await again.close()
        await served.close()
    finally:
        await listener.close()
        await line.close()


async def test_a_file_that_is_no_tty_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with pytest.raises(ConnectFailed, match="not a terminal device"):
        await open_transport(f"serial://{plain}")


async def test_a_tty_in_use_is_refused(line: PtyLine) -> None:
    listener = await listen(f"serial://{line.a}")
    try:
        with pytest.raises(ListenFailed, match="in use by another program"):
            await listen(f"serial://{line.a}")
        with pytest.raises(ConnectFailed, match="in use by another program"):
            await open_transport(f"serial://{line.a}")
    finally:
        await listener.close()


async def test_unknown_options_and_bad_dead_after_are_refused(line: PtyLine) -> None:
    with pytest.raises(TransportSpecError, match="colour"):
        await open_transport(f"serial://{line.b}", colour="red")
    with pytest.raises(TransportSpecError, match="dead_after"):
        await open_transport(f"serial://{line.b}", dead_after=-1)


async def _pair(line: PtyLine, dead_after: float = 10) -> tuple[FrameLink, FrameLink, Listener]:
    listener = await listen(f"serial://{line.a}", dead_after=dead_after)
    client, server = await asyncio.gather(
        open_transport(f"serial://{line.b}", timeout=10, dead_after=dead_after),
        listener.accept(),
    )
    return client, server, listener


async def test_noisy_line_frames_arrive_whole_in_order_or_not_at_all() -> None:
    line = PtyLine(noise=NOISE, seed=11)
    listener = None
    try:
        client, server, listener = await _pair(line)
        rng = random.Random(5)
        frames = [rng.randbytes(rng.choice([0, 1, 200, 1023, 1024, 1025, 5000])) for _ in range(60)]

        async def pump(link: FrameLink, items: list[bytes]) -> None:
            for frame in items:
                await link.send(frame)

        async def take(link: FrameLink, n: int) -> list[bytes]:
            return [await link.recv() for _ in range(n)]

        _, _, at_server, at_client = await asyncio.gather(
            pump(client, frames),
            pump(server, frames[::-1]),
            take(server, len(frames)),
            take(client, len(frames)),
        )
        assert at_server == frames
        assert at_client == frames[::-1]
        stats = client.stats  # type: ignore[attr-defined]
        assert stats["dropped"] > 0  # the noise did hit packets...
        assert stats["resent"] > 0  # ...and cost retransmissions, not wrong bytes
        await client.close()
        await server.close()
    finally:
        if listener is not None:
            await listener.close()
        await line.close()


async def test_a_hung_up_line_is_a_transport_error_at_once(line: PtyLine) -> None:
    client, server, listener = await _pair(line)
    waiting = asyncio.create_task(client.recv())
    await asyncio.sleep(0)  # let recv block (a yield, not a timed wait)
    line.hang_up()
    with pytest.raises(TransportClosed, match="line hung up"):
        await waiting
    with pytest.raises(TransportClosed, match="line hung up"):
        await server.recv()
    with pytest.raises(TransportClosed):
        await client.send(b"too late")
    await client.close()
    await server.close()
    await listener.close()  # its reopen attempts stop


async def test_a_silent_line_is_a_transport_error_after_dead_after(line: PtyLine) -> None:
    # 3 s, not less: a stall of the loaded machine before "ping" crosses would look silent.
    client, server, listener = await _pair(line, dead_after=3)
    await client.send(b"ping")
    assert await server.recv() == b"ping"
    line.cut()
    with pytest.raises(TransportClosed, match=r"went silent for 3 s"):
        await client.recv()
    with pytest.raises(TransportClosed, match="went silent"):
        await server.recv()
    await client.close()
    await server.close()
    await listener.close()


_CRASHING_PHONE = """
import asyncio, os, sys
from transports import open_transport
async def main():
    link = await open_transport(sys.argv[1], timeout=10)
    await link.send(b"hello from the first phone")
    print("sent", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def test_a_phone_that_restarts_replaces_its_dead_session(line: PtyLine) -> None:
    listener = await listen(f"serial://{line.a}")
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_PHONE,
        f"serial://{line.b}",
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        old = await listener.accept()
        assert await old.recv() == b"hello from the first phone"
        assert first.stdout is not None
        assert await first.stdout.readline() == b"sent\n"
        first.kill()  # no FIN, no close: the phone is simply gone
        await first.wait()
        new_client, new_server = await asyncio.gather(
            open_transport(f"serial://{line.b}", timeout=10), listener.accept()
        )
        with pytest.raises(TransportClosed, match="started a new session"):
            await old.recv()
        await new_client.send(b"second phone")
        assert await new_server.recv() == b"second phone"
        await old.close()
        await new_client.close()
        await new_server.close()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
        await listener.close()


async def test_stale_bytes_on_the_line_are_flushed_and_garbage_is_skipped(line: PtyLine) -> None:
    # Bytes written before anyone opened the tty (a modem's banner, a previous
    # session's tail) must not confuse the next session.
    fd = os.open(line.a, os.O_WRONLY | os.O_NOCTTY)
    os.write(fd, b"\r\nRING\r\n\x00\x07\x00" + bytes(range(256)))
    os.close(fd)
    client, server, listener = await _pair(line)
    await client.send(b"clean")
    assert await server.recv() == b"clean"
    await client.close()
    await server.close()
    await listener.close()


@pytest.mark.parametrize("code", [errno.ENOENT, errno.EBUSY, errno.EACCES, errno.EIO])
def test_a_tty_error_reads_alike_from_os_and_termios(code: int) -> None:
    # open_tty fails with OSError (open, flock) or termios.error (tcgetattr/tcsetattr).
    os_error, tty_error = OSError(code, os.strerror(code)), termios.error(code, os.strerror(code))
    assert error_code(os_error) == error_code(tty_error) == code
    assert describe_os_error(os_error) == describe_os_error(tty_error)
