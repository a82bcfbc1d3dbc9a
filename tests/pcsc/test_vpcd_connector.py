"""The vpcd connector against a scripted vpcd on a loopback socket (no pcscd needed)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from structlog.testing import capture_logs

from simcard.vpcd import (
    VpcdAddress,
    VpcdAddressError,
    VpcdConnector,
    VpcdUnreachableError,
    redact_apdu,
)

from ._tinycard import TINY_ATR, TinyCard


class FakeVpcd:
    """A listening socket standing in for vpcd: the test drives the frames."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.address = VpcdAddress("127.0.0.1", self.listener.getsockname()[1])
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        conn, _peer = self.listener.accept()
        conn.settimeout(10)
        self.conn = conn
        return conn

    def send(self, payload: bytes, *, chunk: int = 0) -> None:
        assert self.conn is not None
        frame = len(payload).to_bytes(2, "big") + payload
        if chunk:
            for i in range(0, len(frame), chunk):
                self.conn.sendall(frame[i : i + chunk])
        else:
            self.conn.sendall(frame)

    def receive(self) -> bytes:
        assert self.conn is not None
        head = self._exact(2)
        return self._exact(int.from_bytes(head, "big"))

    def _exact(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            assert chunk, "connector closed the connection"
            buf += chunk
        return buf

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@contextmanager
def running(connector: VpcdConnector) -> Iterator[list[BaseException]]:
    """Run ``serve`` in a thread; stop and join it on exit (errors land in the list)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            connector.serve()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="vpcd-connector")
    thread.start()
    try:
        yield errors
    finally:
        connector.stop()
        thread.join(timeout=5)
        assert not thread.is_alive(), "connector did not stop within 5 s"
        connector.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_control_messages_and_apdus(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    with running(VpcdConnector(card, vpcd.address)) as errors:
        vpcd.accept()
        vpcd.send(b"\x04")
        assert vpcd.receive() == TINY_ATR
        vpcd.send(b"\x01")
        vpcd.send(b"\x02")
        vpcd.send(b"\x00")
        vpcd.send(bytes.fromhex("00a4000002 3f00"))
        # Control messages have no reply: the next frame back is the R-APDU.
        assert vpcd.receive() == bytes.fromhex("003f 9000")
        assert card.events == ["on", "reset", "off"]
    assert errors == []


def test_frames_split_into_single_bytes_are_reassembled(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    with running(VpcdConnector(card, vpcd.address)):
        vpcd.accept()
        vpcd.send(bytes.fromhex("80 3a 0000 03 010203"), chunk=1)
        assert vpcd.receive() == bytes.fromhex("030201 9000")
        vpcd.send(b"\x04", chunk=1)
        assert vpcd.receive() == TINY_ATR


def test_two_frames_in_one_segment_get_two_answers(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    with running(VpcdConnector(card, vpcd.address)):
        conn = vpcd.accept()
        one = bytes.fromhex("00b0000001 aa")
        conn.sendall(len(one).to_bytes(2, "big") + one + b"\x00\x01\x04")
        assert vpcd.receive() == bytes.fromhex("aa9000")
        assert vpcd.receive() == TINY_ATR


def test_lost_link_powers_the_card_off_and_reconnects(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    connector = VpcdConnector(card, vpcd.address, backoff_initial=0.01)
    with running(connector) as errors:
        vpcd.accept().close()
        card.wait_event("off")
        vpcd.accept()
        vpcd.send(b"\x04")
        assert vpcd.receive() == TINY_ATR
        assert connector.connections == 2
    assert errors == []


def test_reconnects_after_vpcd_went_away_entirely() -> None:
    fake = FakeVpcd()
    address = fake.address
    card = TinyCard()
    connector = VpcdConnector(card, address, backoff_initial=0.01, backoff_max=0.05)
    try:
        with running(connector) as errors:
            fake.accept()
            fake.close()  # listener gone too: the connector now gets "connection refused"
            card.wait_event("off")
            fake = FakeVpcd.__new__(FakeVpcd)
            fake.listener = socket.create_server((address.host, address.port))
            fake.listener.settimeout(10)
            fake.address = address
            fake.conn = None
            fake.accept()
            fake.send(b"\x04")
            assert fake.receive() == TINY_ATR
        assert errors == []
    finally:
        fake.close()


def test_unreachable_at_start_fails_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    # Nobody listens on that port any more.
    connector = VpcdConnector(TinyCard(), VpcdAddress("127.0.0.1", port), connect_timeout=0.2)
    with pytest.raises(VpcdUnreachableError, match=rf"127\.0\.0\.1:{port} unreachable"):
        connector.serve()
    connector.close()


def test_stop_interrupts_the_backoff_wait() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    connector = VpcdConnector(
        TinyCard(), VpcdAddress("127.0.0.1", port), connect_timeout=60, backoff_initial=30
    )
    # running() joins with a 5 s bound: a 30 s backoff must be cut short by stop().
    with running(connector) as errors:
        pass
    assert errors == []


def test_stop_interrupts_a_connected_idle_wait(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    with running(VpcdConnector(card, vpcd.address)) as errors:
        vpcd.accept()
        vpcd.send(b"\x04")
        assert vpcd.receive() == TINY_ATR
    assert errors == []
    # The connector closed its end on the way out.
    assert vpcd.conn is not None
    assert vpcd.conn.recv(1) == b""


def test_trace_logs_apdus_but_never_pin_or_puk(vpcd: FakeVpcd) -> None:
    card = TinyCard()
    pin = bytes.fromhex("31323334ffffffff")
    puk = bytes.fromhex("3132333435363738")
    with capture_logs() as logs, running(VpcdConnector(card, vpcd.address, trace=True)):
        vpcd.accept()
        for apdu in (
            bytes.fromhex("a020000108") + pin,
            bytes.fromhex("002c000010") + puk + pin,
            bytes.fromhex("a0b2010420"),
        ):
            vpcd.send(apdu)
            vpcd.receive()
    traced = [entry for entry in logs if entry["event"] == "apdu"]
    assert len(traced) == 3
    text = repr(logs)
    assert pin.hex() not in text
    assert puk.hex() not in text
    assert pin[::-1].hex() not in text  # the tiny card echoes data reversed
    assert traced[2]["c"] == "a0b2010420"


def test_redact_apdu() -> None:
    assert redact_apdu(bytes.fromhex("a02000010831323334ffffffff")) == (
        "a020000108<8 bytes redacted>"
    )
    assert redact_apdu(bytes.fromhex("a0a40000023f00")) == "a0a40000023f00"
    assert redact_apdu(bytes.fromhex("0020000100")) == "0020000100"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:35963", VpcdAddress("127.0.0.1", 35963)),
        ("localhost:35964", VpcdAddress("localhost", 35964)),
        ("[::1]:1", VpcdAddress("::1", 1)),
    ],
)
def test_address_parse(text: str, expected: VpcdAddress) -> None:
    assert VpcdAddress.parse(text) == expected
    assert VpcdAddress.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["", "35963", ":35963", "host:", "host:0", "host:65536", "host:x1", "::1:5", "a b:1"]
)
def test_address_parse_rejects(text: str) -> None:
    with pytest.raises(VpcdAddressError):
        VpcdAddress.parse(text)
