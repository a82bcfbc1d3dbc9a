"""spec/card.md §3 through real PC/SC: VERIFY, the try counter, blocking, UNBLOCK CHV."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.pcsc import PcscConnection, ServedCard

from ._apdu import ADN, PUK, Card, code

pytestmark = pytest.mark.pcsc


def _fresh(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> Card:
    served = serve_card()
    return Card(pcsc_connect(served.reader))


def _can_read_adn(card: Card) -> bool:
    card.select_path(0x3F00, 0x7F10, ADN)
    return card.read_record(1).sw == 0x9000


def test_gsm_wrong_pin_block_and_unblock(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    card = _fresh(serve_card, pcsc_connect)
    assert card.verify("1111") == 0x9804
    assert card.verify("0000") == 0x9000  # a right PIN resets the counter
    assert card.verify("1111") == 0x9804
    assert card.verify("1111") == 0x9804
    assert card.verify("1111") == 0x9840  # third wrong in a row: blocked
    assert card.verify("0000") == 0x9840  # the right PIN no longer helps
    card.conn.reconnect()
    assert not _can_read_adn(card)
    # Wrong PUK: counted, still blocked.
    assert card.raw(bytes.fromhex("a02c000010") + code("87654321") + code("4321")).sw == 0x9804
    assert card.verify("0000") == 0x9840
    assert card.raw(bytes.fromhex("a02c000010") + code(PUK) + code("4321")).sw == 0x9000
    assert card.verify("4321") == 0x9000
    assert _can_read_adn(card)
    card.conn.reconnect()
    assert card.verify("0000") == 0x9804  # the old PIN is gone


def test_uicc_counter_in_63cx_and_blocked_6983(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    card = _fresh(serve_card, pcsc_connect)
    assert card.verify("9999", cla=0x00) == 0x63C2
    assert card.verify("9999", cla=0x00) == 0x63C1
    assert card.verify("9999", cla=0x00) == 0x6983
    assert card.verify("0000", cla=0x00) == 0x6983


def test_counters_survive_a_restart_of_serve(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    served = serve_card()
    card = Card(pcsc_connect(served.reader))
    assert card.verify("9999", cla=0x00) == 0x63C2
    assert served.stop() == 0
    served.wait_absent()
    served.start()
    card.conn.disconnect()
    card.conn.connect()
    assert card.verify("9999", cla=0x00) == 0x63C1
