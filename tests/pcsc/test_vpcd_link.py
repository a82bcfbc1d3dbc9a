"""The connector through real pcscd + vpcd, with a stand-in card (no card core needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from smartcard import scard

from simcard.vpcd import VpcdAddress, VpcdConnector
from tests.fixtures.pcsc import PORTS, READERS, PcscConnection, Pcscd, wait_card

from ._tinycard import TINY_ATR, TinyCard

pytestmark = pytest.mark.pcsc


class Running:
    """A connector serving a TinyCard on reader 1 from a thread of this process."""

    def __init__(self) -> None:
        self.card = TinyCard()
        self.connector = VpcdConnector(
            self.card, VpcdAddress("127.0.0.1", PORTS[1]), backoff_initial=0.02
        )
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="vpcd-link")

    def _run(self) -> None:
        try:
            self.connector.serve()
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        self.connector.stop()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "connector did not stop"
        self.connector.close()


@pytest.fixture
def tiny(pcscd: Pcscd) -> Iterator[Running]:
    running = Running()
    running.thread.start()
    try:
        wait_card(READERS[1], present=True)
        yield running
    finally:
        if running.thread.is_alive():
            running.stop()
        wait_card(READERS[1], present=False)
    assert running.errors == []


def _atr(conn: PcscConnection) -> bytes:
    hresult, _reader, _state, _proto, atr = scard.SCardStatus(conn._card)
    assert hresult == scard.SCARD_S_SUCCESS
    return bytes(atr)


def test_apdus_cross_pcscd_and_vpcd(
    tiny: Running, pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    conn = pcsc_connect(READERS[1])
    assert _atr(conn) == TINY_ATR
    assert conn.transmit("80 3a 0000 03 010203") == (bytes.fromhex("030201"), 0x90, 0x00)
    # Power-on reached the card through vpcd's control message.
    assert "on" in tiny.card.events
    assert tiny.card.apdus[-1] == bytes.fromhex("803a000003010203")


def test_unpower_and_reset_reach_the_card(
    tiny: Running, pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    conn = pcsc_connect(READERS[1])
    tiny.card.events.clear()
    conn.disconnect(scard.SCARD_UNPOWER_CARD)
    tiny.card.wait_event("off")
    conn.connect()
    tiny.card.wait_event("on")
    conn.reconnect(scard.SCARD_RESET_CARD)
    tiny.card.wait_event("reset")
    assert conn.sw("00b0000001 aa") == 0x9000


def test_stopping_the_connector_removes_the_card(tiny: Running) -> None:
    tiny.stop()
    wait_card(READERS[1], present=False)


def test_connector_survives_a_pcscd_restart(
    tiny: Running, pcscd: Pcscd, pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    pcscd.restart()
    wait_card(READERS[1], present=True)
    assert tiny.connector.connections >= 2
    conn = pcsc_connect(READERS[1])
    assert conn.transmit("00b0000002 0102") == (bytes.fromhex("0201"), 0x90, 0x00)
