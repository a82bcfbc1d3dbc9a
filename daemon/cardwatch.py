"""Is the card there? A stream of presence changes for the daemon.

With ``[card] reader`` (PC/SC) the stream follows ``cardio.events.CardEvents``:
``True`` when a matching reader holds a card, ``False`` when none does, ``None``
while the PC/SC service cannot be asked (it is retried with a backoff). With
``[card] image`` (the emulator driven in-process) the card is there as long as
its image file is, and nobody pulls it mid-sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog

from daemon.config import Config

__all__ = ["card_presence"]

log = structlog.get_logger(__name__)

_RETRY_MIN = 1.0
_RETRY_MAX = 30.0


async def card_presence(config: Config) -> AsyncIterator[bool | None]:
    """Presence now, then every change (see the module docstring); runs until closed."""
    if config.card.image is not None:
        yield config.card.image.exists()
        await asyncio.Event().wait()  # an image is not pulled out
        return
    from cardio.errors import CardioError
    from cardio.events import CardEvents, EventKind

    retry = _RETRY_MIN
    last: bool | None = None
    reported = False
    while True:
        try:
            async with CardEvents(reader=config.card.reader or "", include_present=False) as events:
                retry = _RETRY_MIN
                present = events.card_present()
                if present != last or not reported:
                    last, reported = present, True
                    yield present
                async for event in events:
                    if event.kind is EventKind.READER_ADDED:
                        continue
                    present = events.card_present()
                    if present != last:
                        last = present
                        yield present
        except CardioError as exc:
            log.warning("cannot watch the card", error=str(exc), retry_in=retry)
        if last is not None or not reported:
            last, reported = None, True
            yield None  # unknown until PC/SC answers again
        await asyncio.sleep(retry)
        retry = min(retry * 2, _RETRY_MAX)
