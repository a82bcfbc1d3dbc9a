"""A stand-in card with the four methods the connector uses, to test the link alone."""

from __future__ import annotations

import threading

# TS=3B, T0=02: no interface bytes (so T=0), two historical bytes.
TINY_ATR = bytes.fromhex("3B021450")


class TinyCard:
    """Answers every APDU with its data reversed + 9000 and counts power events."""

    atr = TINY_ATR

    def __init__(self) -> None:
        self.events: list[str] = []
        self.apdus: list[bytes] = []
        self.changed = threading.Condition()

    def _note(self, event: str) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def power_on(self) -> bytes:
        self._note("on")
        return self.atr

    def power_off(self) -> None:
        self._note("off")

    def reset(self) -> bytes:
        self._note("reset")
        return self.atr

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        return apdu[5:][::-1] + b"\x90\x00"

    def wait_event(self, event: str, timeout: float = 20.0) -> None:
        """Block until ``event`` was recorded."""
        with self.changed:
            assert self.changed.wait_for(lambda: event in self.events, timeout), (
                f"no {event!r} event; saw {self.events}"
            )
