"""Fault injection for the crash matrix, used only by the wrapper scripts of this folder.

The product has no crash hooks: the wrappers (``phone_run``, ``pda_run``) patch
product functions at run time so that one named *hook* fires once, and then
``SIGKILL`` either their own process or another one (the card emulator).

Environment (read once, at import):

``SIMSYNC_CRASH_AT``
    The hook, e.g. ``sent:Alert``, ``recv:Prepared``, ``before-send:Done``,
    ``after:write_record``. Unset: the wrapper changes nothing.
``SIMSYNC_CRASH_KILL``
    ``self`` (default) or the PID of the process to kill; after killing
    another process the wrapper waits until that process is dead (a pidfd, not
    a sleep) and then carries on, so the product meets the loss at its next step.
"""

from __future__ import annotations

import os
import select
import signal
import sys

from syncproto.codec import decode
from transports import FrameLink

__all__ = ["CRASH_AT", "WatchedLink", "fire", "message_kind"]

CRASH_AT = os.environ.get("SIMSYNC_CRASH_AT", "")
_KILL = os.environ.get("SIMSYNC_CRASH_KILL", "self")
_fired = False


def fire(hook: str) -> None:
    """Kill the target if ``hook`` is the configured one (only the first time it is reached)."""
    global _fired  # noqa: PLW0603 - one crash per process, whatever object reaches the hook
    if _fired or hook != CRASH_AT:
        return
    _fired = True
    # On stderr so a failing row's log shows where the crash really happened.
    print(f"crash-inject: SIGKILL {_KILL} at {hook}", file=sys.stderr, flush=True)
    if _KILL == "self":
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: SIGKILL of ourselves returned")
    pid = int(_KILL)
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        # A pidfd turns readable when the process has exited: wait for that, bounded.
        ready, _, _ = select.select([fd], [], [], 10.0)
        if not ready:
            raise AssertionError(f"process {pid} still alive 10 s after SIGKILL")
    finally:
        os.close(fd)


def message_kind(frame: bytes) -> str:
    """The protocol message name a frame carries (``?`` for one that does not decode)."""
    try:
        return type(decode(frame)).__name__
    except Exception:  # a broken frame is the product's business, not the hook's
        return "?"


class WatchedLink(FrameLink):
    """A FrameLink that fires ``before-send:K``, ``sent:K`` and ``recv:K`` per message kind K."""

    def __init__(self, inner: FrameLink) -> None:
        self.inner = inner
        self.peer = inner.peer
        self.max_frame = inner.max_frame

    async def send(self, frame: bytes) -> None:
        """Send through the real link, with hooks either side."""
        kind = message_kind(frame)
        fire(f"before-send:{kind}")
        await self.inner.send(frame)
        fire(f"sent:{kind}")

    async def recv(self) -> bytes:
        """Receive from the real link, then fire the hook for what arrived."""
        frame = await self.inner.recv()
        fire(f"recv:{message_kind(frame)}")
        return frame

    async def close(self) -> None:
        """Close the real link."""
        await self.inner.close()
