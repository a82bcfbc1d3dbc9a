"""Fixtures of the cardio tests: the emulated card behind every real link.

``link`` is a contract fixture: each test using it runs once over the in-process
link and once over real PC/SC (pcscd + vpcd + ``simsync card serve`` of a fresh
image, through ``PcscLink``), so both implementations answer the same cases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import simcard
from cardio.inproc import InProcessLink
from cardio.link import CardLink
from cardio.sim import Sim


@pytest.fixture
def card() -> simcard.SimCard:
    return simcard.new_memory_card()


@pytest.fixture(params=["inproc", pytest.param("pcsc", marks=pytest.mark.pcsc)])
async def link(request: pytest.FixtureRequest, card: simcard.SimCard) -> AsyncIterator[CardLink]:
    if request.param == "inproc":
        async with InProcessLink(card) as opened:
            yield opened
        card.close()
        return
    from cardio.pcsc import PcscLink

    served = request.getfixturevalue("serve_card")()
    async with PcscLink(served.reader) as pcsc:
        yield pcsc


@pytest.fixture
def sim(link: CardLink) -> Sim:
    return Sim(link)
