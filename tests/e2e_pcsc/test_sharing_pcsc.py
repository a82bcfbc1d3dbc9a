"""Another PC/SC program using the card while a sync runs (docs/cardio.md "Sharing the card").

Real pcscd + vpcd + ``simsync card serve``; the sync is ``run_sync`` in this process so
that a hook in its PC/SC link can wake the other program after every answer the card
gives the phone, the worst moment included: a ``61xx``/``9Fxx`` answer, before the
phone's GET RESPONSE. The other program (its own PC/SC context and handle, in a
thread) then selects the MF and reads the answer with GET RESPONSE in a transaction
of its own, and leaves channel 0 in DF.GSM. When the phone holds a transaction at
that moment the hook goes on at once (pcscd makes the other program wait); when it
holds none the hook waits until the other program is done, so without transactions
the phone's answer (and its current file on channel 0) is lost every time, never by
chance. No sleeps: the hook and the other program meet on events."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from smartcard import scard

import cardio.pcsc
from daemon.config import Config
from tests.e2e.harness import World
from tests.e2e_pcsc.rig import Terminal
from tests.fixtures.pcsc import PcscConnection, ServedCard

TIMEOUT = 20.0


class Intruder:
    """Another program on channel 0: SELECT MF + GET RESPONSE, SELECT DF.GSM, each round
    in one transaction; every answer is checked."""

    def __init__(self, reader: str) -> None:
        hresult, self.ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hresult == scard.SCARD_S_SUCCESS
        hresult, self.card, _ = scard.SCardConnect(
            self.ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
        )
        assert hresult == scard.SCARD_S_SUCCESS
        self.rounds: queue.Queue[threading.Event | None] = queue.Queue()
        self.done = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, name="intruder")
        self.thread.start()

    def _transmit(self, apdu: str) -> bytes:
        hresult, answer = scard.SCardTransmit(
            self.card, scard.SCARD_PCI_T0, list(bytes.fromhex(apdu))
        )
        if hresult != scard.SCARD_S_SUCCESS:
            raise AssertionError(f"{apdu}: PC/SC error 0x{hresult & 0xFFFFFFFF:08X}")
        return bytes(answer)

    def _round(self) -> None:
        assert scard.SCardBeginTransaction(self.card) == scard.SCARD_S_SUCCESS
        try:
            first = self._transmit("A0A40000023F00")
            assert first[0] == 0x9F, f"SELECT MF answered {first.hex()}"
            answer = self._transmit(f"A0C00000{first[1]:02X}")
            assert answer[-2:] == b"\x90\x00", f"GET RESPONSE answered {answer[-2:].hex()}"
            assert answer[4:7] == b"\x3f\x00\x01", f"not the MF's answer: {answer.hex()}"
            assert self._transmit("A0A40000027F20")[0] == 0x9F  # channel 0 now in DF.GSM
        finally:
            scard.SCardEndTransaction(self.card, scard.SCARD_LEAVE_CARD)

    def _run(self) -> None:
        while (finished := self.rounds.get()) is not None:
            try:
                self._round()
                self.done += 1
            except AssertionError as exc:
                self.failures.append(str(exc))
            finally:
                finished.set()

    def close(self) -> None:
        self.rounds.put(None)
        self.thread.join(TIMEOUT)
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.ctx)


class Watched(cardio.pcsc.PcscLink):
    """The phone's PC/SC link with the hooks (``intruder``, ``resetter``)."""

    intruder: Intruder | None = None
    woken = 0
    resetter: PcscConnection | None = None
    resets = 0
    # (INS, held) of each sync command on channel 0 (CLA 80) and its GET RESPONSE.
    channel0: list[tuple[int, bool]]

    def __init__(self, reader: str = "") -> None:
        super().__init__(reader)
        self.in_transaction = False

    def _begin_blocking(self) -> None:
        resetter = self.resetter
        if resetter is not None and self.apdu_count and not self.held:
            # The first command after the hold: another program resets the card first.
            type(self).resetter = None
            type(self).resets += 1
            resetter.reconnect(scard.SCARD_RESET_CARD)
        super()._begin_blocking()
        self.in_transaction = True

    def _end_blocking(self) -> None:
        self.in_transaction = False
        super()._end_blocking()

    def _exchange_blocking(self, apdu: bytes, *, begin: bool = False) -> bytes:
        answer = super()._exchange_blocking(apdu, begin=begin)
        if apdu[0] == 0x80:
            self.channel0.append((apdu[1], self.held))
        intruder = self.intruder
        if intruder is not None:
            type(self).woken += 1
            finished = threading.Event()
            intruder.rounds.put(finished)
            if not self.in_transaction:
                # Nothing keeps it off the card: let it finish first, every time.
                assert finished.wait(TIMEOUT), "the other program did not finish"
        return answer


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Watched]]:
    class WatchedHere(Watched):  # class state of this test only
        pass

    cls = WatchedHere
    cls.channel0 = []
    monkeypatch.setattr(cardio.pcsc, "PcscLink", cls)
    yield cls
    if cls.intruder is not None:
        cls.intruder.close()


class PcscWorld(World):
    """The e2e harness's phone and PDAs, the card served through pcscd + vpcd."""

    reader = ""

    def config(self) -> Config:
        cfg = super().config()
        return replace(cfg, card=replace(cfg.card, image=None, reader=self.reader))


@pytest.fixture
async def world(
    tmp_path: Path, serve_card: Callable[..., ServedCard], request: pytest.FixtureRequest
) -> AsyncIterator[PcscWorld]:
    w = PcscWorld(tmp_path, records=30, sync_applet=getattr(request, "param", True))
    try:
        for n in range(1, 6):
            w.card.write(n, f"Person {n}", f"+49{n:06d}")
        w.reader = serve_card(w.image).reader
        pda = await w.add_pda("pda1")
        pda.add("Carol", "+4433333")
        yield w
    finally:
        await w.close()


def names(records: dict[int, tuple[str, str]]) -> list[str]:
    return sorted(name for name, _ in records.values())


EXPECTED = sorted(["Carol", *(f"Person {n}" for n in range(1, 6))])


@pytest.mark.parametrize("world", [True, False], ids=["sync-commands", "plain-sim"], indirect=True)
async def test_another_program_between_select_and_get_response(
    world: PcscWorld, watched: type[Watched], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    """A slow sync, then a fast one, with another program woken after every command: both
    get their answers and the sync the right data."""
    watched.intruder = Intruder(world.reader)
    slow = await world.sync("pda1")
    assert slow["ok"], slow["error"]
    assert slow["mode"] == "slow"
    world.pdas["pda1"].add("Zoe", "+4912")
    fast = await world.sync("pda1")
    assert fast["ok"], fast["error"]
    assert fast["to_card"]["added"] == 1
    assert watched.woken == slow["apdus"] + fast["apdus"]  # after every command
    # Its rounds all ran (close() waits for the last), and every answer it got was right.
    watched.intruder.close()
    assert watched.intruder.failures == []
    assert watched.intruder.done == watched.woken
    watched.intruder = None
    term = Terminal(pcsc_connect(world.reader))
    assert names(term.records()) == sorted([*EXPECTED, "Zoe"])
    assert sorted(n for n, _ in world.pdas["pda1"].contacts().values()) == sorted(
        [*EXPECTED, "Zoe"]
    )


async def test_another_program_resets_the_card_between_two_commands(
    world: PcscWorld, watched: type[Watched], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    """A reset ends the PIN, the channels and the session of the phone's connection: the
    sync stops with a clear error before anything is committed, and the next one is fast."""
    assert (await world.sync("pda1"))["ok"]
    world.pdas["pda1"].add("Zoe", "+4912")
    watched.resetter = pcsc_connect(world.reader)
    broken = await world.sync("pda1")
    assert watched.resets == 1
    assert broken["error"]["code"] == "no_card", broken
    assert "reset" in broken["error"]["message"]
    assert broken["to_card"]["added"] == 0
    again = await world.sync("pda1")
    assert again["ok"], again["error"]
    assert again["mode"] == "fast"
    assert again["to_card"]["added"] == 1
    term = Terminal(pcsc_connect(world.reader))
    assert names(term.records()) == sorted([*EXPECTED, "Zoe"])


async def test_a_change_list_asked_on_channel_0_is_read_in_one_hold(
    world: PcscWorld, watched: type[Watched], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    """The refresh proves the phone's own writes by the PDA's change list, asked on channel
    0 (NEWSYNC, GET RESPONSE, GETCHANGES, never stored): another terminal's NEWSYNC in
    between would replace that session, so the card is held from the first to the last."""
    assert (await world.sync("pda1"))["ok"]
    pda = world.pdas["pda1"]
    for i in range(5):
        pda.add(f"New {i}", f"+3{i:06d}")
    fast = await world.sync("pda1")  # writes 5 records in the PDA's session
    assert fast["to_card"]["added"] == 5, fast
    term = Terminal(pcsc_connect(world.reader))
    term.write(1, "Person 1 (work)", "+49000001")  # so the PDA's list names one: GETCHANGES
    watched.intruder = Intruder(world.reader)
    slow = await world.sync("pda1", "slow")  # its refresh asks the PDA's list
    assert slow["ok"], slow["error"]
    assert (0x3C, True) in watched.channel0  # GETCHANGES on channel 0, held
    assert all(held for _ins, held in watched.channel0), watched.channel0
    watched.intruder.close()
    assert watched.intruder.failures == []
    assert watched.intruder.done == watched.woken
    edited = [n if n != "Person 1" else "Person 1 (work)" for n in EXPECTED]
    expected = sorted([*edited, *(f"New {i}" for i in range(5))])
    # A new terminal: the other program left channel 0 in DF.GSM.
    assert names(Terminal(pcsc_connect(world.reader)).records()) == expected
    assert sorted(n for n, _ in pda.contacts().values()) == expected
