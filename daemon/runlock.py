"""One sync at a time per card and per PDA, across processes sharing a state directory.

Two syncs on one card interleave their APDUs (one's SELECT lands in the other's
session: ``6985``), and two on one PDA race for its anchors. So a sync holds an
``fcntl`` lock on ``state_dir/locks/card-…`` and ``state_dir/locks/pda-…`` for its
whole run; ``simsync sync`` and the daemon take the same locks. The card's lock
is always taken first, so two syncs never wait for each other in a circle.

A later sync waits for the earlier one up to ``wait`` seconds (a sync takes
seconds; a person running three at once wants all three done), then gives up
with ``busy`` naming what it waited for and which process holds it. A lock dies
with its process: a killed sync never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from daemon.errors import SyncError
from syncproto.codes import ErrorCode

if TYPE_CHECKING:
    from daemon.config import Config, PdaConfig

__all__ = ["DEFAULT_WAIT", "hold", "lock_path", "locks_for"]

log = structlog.get_logger(__name__)

DEFAULT_WAIT = 60.0
# How often a waiting sync looks again; flock has no time-out of its own and a
# thread blocked in it could not be cancelled.
_POLL = 0.05


def lock_path(state_dir: Path, kind: str, key: str) -> Path:
    """The lock file of one card (``kind`` ``card``) or one PDA (``pda``)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return state_dir / "locks" / f"{kind}-{digest}.lock"


@contextlib.asynccontextmanager
async def hold(
    state_dir: Path, locks: Sequence[tuple[str, str, str]], wait: float = DEFAULT_WAIT
) -> AsyncIterator[None]:
    """Hold every lock of ``locks`` (kind, key, what a person calls it), in order."""
    deadline = time.monotonic() + max(wait, 0.0)
    with contextlib.ExitStack() as stack:
        for kind, key, label in locks:
            path = lock_path(state_dir, kind, key)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            stack.callback(os.close, fd)  # closing the file releases its lock
            await _acquire(fd, path, label, deadline, wait)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield


async def _acquire(fd: int, path: Path, label: str, deadline: float, wait: float) -> None:
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            if waited:
                log.info("lock taken after waiting", lock=label)
            return
        if not waited:
            log.info("waiting for another sync", lock=label, holder=_holder(fd))
            waited = True
        if time.monotonic() >= deadline:
            holder = _holder(fd)
            by = f" (process {holder})" if holder else ""
            raise SyncError(
                ErrorCode.BUSY,
                f"another sync is using {label}{by}; waited {wait:g} s. Try again when it "
                f"is done (simsync sync --wait SECONDS waits longer; lock file {path})",
            )
        await asyncio.sleep(_POLL)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        if text.isdigit():
            return text
    return ""


def locks_for(config: Config, pda: PdaConfig) -> list[tuple[str, str, str]]:
    """The locks one sync of ``pda`` holds: its card's (first), then the PDA's."""
    if config.card.image is not None:
        card = ("card", f"image:{config.card.image.resolve()}", f"card image {config.card.image}")
    elif config.card.reader:
        card = ("card", f"reader:{config.card.reader}", f"the card in {config.card.reader!r}")
    else:
        card = ("card", "reader:", "the card (the only reader)")
    return [card, ("pda", pda.device_id, f"PDA {pda.name}")]
