"""A card shared by the read-mostly tests of this folder (one serve process per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smartcard import scard

from tests.fixtures.pcsc import PcscConnection, Pcscd, ServedCard, serving

from ._apdu import Card


@pytest.fixture(scope="module")
def shared_served(pcscd: Pcscd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCard]:
    """One default card (PIN 0000) served on reader 1 for the whole module.

    Reader 1, so tests of the same module can still ``serve_card()`` on reader 0.
    """
    with serving(tmp_path_factory.mktemp("shared-card")) as factory:
        yield factory(reader=1)


@pytest.fixture
def card(shared_served: ServedCard) -> Iterator[Card]:
    """A fresh connection to the shared card, reset first: MF selected, PIN unverified,
    no session, channels 1-3 closed."""
    conn = PcscConnection(shared_served.reader)
    try:
        conn.reconnect(scard.SCARD_RESET_CARD)
        yield Card(conn)
    finally:
        conn.close()
