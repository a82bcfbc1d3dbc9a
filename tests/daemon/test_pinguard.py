"""The PIN rule on its own, with an in-test card that counts tries as a SIM does."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardio import errors as card_errors
from daemon.errors import SyncError
from daemon.pinguard import PinGuard
from syncproto.codes import ErrorCode

ICCID = "8949000000000000001"


class Sim:
    """Three tries, reset by the right PIN, blocked at zero; remembers what it was sent."""

    def __init__(self, pin: str = "24681357", tries: int = 3) -> None:
        self.iccid = ICCID
        self.pin = pin
        self.tries = tries
        self.presented: list[str] = []

    async def pin_tries_left(self) -> int | None:
        return self.tries

    async def verify_pin(self, pin: str) -> None:
        self.presented.append(pin)
        if self.tries == 0:
            raise card_errors.CardBlocked(0x6983, "VERIFY")
        if pin == self.pin:
            self.tries = 3
            return
        self.tries -= 1
        if self.tries == 0:
            raise card_errors.CardBlocked(0x6983, "VERIFY")
        raise card_errors.PinRejected(0x63C0 | self.tries, "VERIFY", self.tries)


async def _refused(guard: PinGuard, sim: Sim, pin: str) -> SyncError:
    with pytest.raises(SyncError) as info:
        await guard.verify(sim, pin)
    assert pin not in info.value.message
    return info.value


async def test_a_rejected_pin_is_presented_once(tmp_path: Path) -> None:
    guard = PinGuard(tmp_path, tmp_path / "pin")
    sim = Sim()
    first = await _refused(guard, sim, "13572468")
    assert first.code is ErrorCode.PIN_REJECTED
    assert "tries left: 2" in first.message
    assert str(tmp_path / "pin") in first.message
    for _ in range(5):
        again = await _refused(PinGuard(tmp_path, None), sim, "13572468")  # a new process too
        assert again.code is ErrorCode.PIN_REJECTED
        assert "will not present it again" in again.message
    assert sim.presented == ["13572468"]
    await guard.verify(sim, "24681357")
    assert sim.tries == 3
    assert not list((tmp_path / "pin-guard").iterdir())  # accepted: the record is gone


async def test_never_the_last_try_and_blocked_is_blocked(tmp_path: Path) -> None:
    guard = PinGuard(tmp_path, None)
    sim = Sim(tries=1)
    refused = await _refused(guard, sim, "24681357")
    assert refused.code is ErrorCode.PIN_REJECTED
    assert "1 PIN try left" in refused.message
    sim.tries = 0
    blocked = await _refused(guard, sim, "24681357")
    assert blocked.code is ErrorCode.CARD_BLOCKED
    assert "PUK" in blocked.message
    assert sim.presented == []


async def test_a_card_that_blocks_on_a_wrong_pin_says_card_blocked(tmp_path: Path) -> None:
    class Odd(Sim):  # reports 3 tries, then blocks at once (some cards count 1)
        async def verify_pin(self, pin: str) -> None:
            self.presented.append(pin)
            raise card_errors.CardBlocked(0x6983, "VERIFY")

    sim = Odd()
    error = await _refused(PinGuard(tmp_path, None), sim, "11119999")
    assert error.code is ErrorCode.CARD_BLOCKED
    assert "PUK" in error.message
    again = await _refused(PinGuard(tmp_path, None), sim, "11119999")
    assert "will not present it again" in again.message
    assert sim.presented == ["11119999"]


async def test_an_unreadable_record_refuses_rather_than_risking_a_try(tmp_path: Path) -> None:
    (tmp_path / "pin-guard").mkdir()
    (tmp_path / "pin-guard" / ICCID).write_text("{not json")
    sim = Sim()
    error = await _refused(PinGuard(tmp_path, None), sim, "24681357")
    assert error.code is ErrorCode.INTERNAL
    assert "unreadable PIN record" in error.message
    assert sim.presented == []


async def test_the_record_holds_no_pin(tmp_path: Path) -> None:
    await _refused(PinGuard(tmp_path, None), Sim(), "13572468")
    record = (tmp_path / "pin-guard" / ICCID).read_bytes()
    assert b"13572468" not in record
    assert (tmp_path / "pin-guard" / ICCID).stat().st_mode & 0o077 == 0
