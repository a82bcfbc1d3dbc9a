"""Fixtures of the cardio tests: an emulated card behind the in-process link."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import simcard
from cardio.inproc import InProcessLink
from cardio.sim import Sim


@pytest.fixture
def card() -> simcard.SimCard:
    return simcard.new_memory_card()


@pytest.fixture
async def link(card: simcard.SimCard) -> AsyncIterator[InProcessLink]:
    async with InProcessLink(card) as opened:
        yield opened
    card.close()


@pytest.fixture
def sim(link: InProcessLink) -> Sim:
    return Sim(link)
