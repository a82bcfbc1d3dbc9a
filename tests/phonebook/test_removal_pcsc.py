"""The card pulled in the middle of a READ loop: a clean error, and the local copy stays right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cardio.codecs import AdnRecord
from cardio.errors import CardRemoved, LinkError
from cardio.localcopy import CardStateDB
from cardio.pcsc import PcscLink
from cardio.session import PhonebookCard
from tests.phonebook.test_dump_pcsc import fill


class PullingLink(PcscLink):
    """A PC/SC link whose card is yanked (its emulator killed) after ``after`` exchanges."""

    def __init__(self, reader: str, pull: Callable[[], None], after: int) -> None:
        super().__init__(reader)
        self.pull, self.after = pull, after

    async def _exchange(self, apdu: bytes) -> bytes:
        if self.apdu_count >= self.after and self.after >= 0:
            self.after = -1
            self.pull()
        return await super()._exchange(apdu)


async def refresh(reader: str, state: CardStateDB, *, pull: Any = None, after: int = -1) -> Any:
    link = PullingLink(reader, pull or (lambda: None), after)
    await link.open()
    try:
        card = await PhonebookCard.open(link, state, pin="0000", host_partner=state.host_partner())
        await card.refresh()
        content = card.cached()
        await card.close()
        return content
    finally:
        await link.close()


def expected(names: dict[int, tuple[str, str]], records: int) -> dict[int, bytes]:
    out = dict.fromkeys(range(1, records + 1), b"\xff" * 32)
    out.update({n: AdnRecord(a, b).encode(18) for n, (a, b) in names.items()})
    return out


@pytest.mark.parametrize("incremental", [False, True])
async def test_card_pulled_mid_refresh(
    serve_card: Callable[..., Any], tmp_path: Path, incremental: bool
) -> None:
    from simcard import create_image

    image = tmp_path / "card.sqlite"
    create_image(image, records=30)
    names = {n: (f"Person {n}", f"+49{n}") for n in range(1, 21)}
    fill(image, names)
    served = serve_card(image)
    state = CardStateDB(tmp_path / "cards.sqlite")
    try:
        if incremental:
            assert await refresh(served.reader, state) == expected(names, 30)
            served.stop()
            served.wait_absent()
            changed = {n: (f"Changed {n}", "+1") for n in range(5, 15)}
            fill(image, changed)
            names.update(changed)
            served.start()
        # Pull the card a few READ RECORDs into the loop (the prologue and NEWSYNC take ~16).
        with pytest.raises(LinkError) as exc:
            await refresh(served.reader, state, pull=served.kill, after=20)
        assert isinstance(exc.value, CardRemoved), repr(exc.value)
        served.wait_absent()
        served.start()
        # Re-inserted: the copy is exact again (incrementally or by a full read).
        assert await refresh(served.reader, state) == expected(names, 30)
    finally:
        state.close()
