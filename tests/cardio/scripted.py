"""A scripted raw-APDU card: answers a fixed dialogue and fails on anything else."""

from __future__ import annotations


class ScriptedCard:
    """Plays ``script``: pairs of (expected C-APDU hex, R-APDU hex), in order."""

    ATR = bytes.fromhex("3B 02 14 50")

    def __init__(self, *script: tuple[str, str]) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []
        self.resets = 0

    @property
    def atr(self) -> bytes:
        return self.ATR

    def power_on(self) -> bytes:
        return self.ATR

    def reset(self) -> bytes:
        self.resets += 1
        return self.ATR

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        assert self.script, f"unexpected APDU {apdu.hex(' ')} after the script ended"
        expected, answer = self.script.pop(0)
        assert apdu == expected, f"sent {apdu.hex(' ')}, script expected {expected.hex(' ')}"
        return answer

    @property
    def done(self) -> bool:
        return not self.script
