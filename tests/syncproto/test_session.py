"""Two session cores passing bytes in memory: every mode, and every kind of fault."""

from __future__ import annotations

import pytest

from syncproto import (
    Abort,
    Alert,
    AlertReply,
    Applied,
    CardData,
    CardDeleted,
    CardRecord,
    Committed,
    Delete,
    Done,
    LocalProtocolError,
    Message,
    Mode,
    PdaOps,
    PdaSession,
    PhoneSession,
    Prepared,
    Put,
    RemoteProtocolError,
    Removed,
    RequestedMode,
    Session,
    Skipped,
    State,
    Stored,
    encode,
)

A8, B8 = bytes(8), bytes(range(1, 9))


def alert(requested: RequestedMode = RequestedMode.AUTO, last: bytes | None = A8) -> Alert:
    return Alert("8949000000000000001", 0x6F3A, last, B8, requested, 20, 10, True, 5)


def exchange(sender: Session, receiver: Session, msg: Message) -> Message:
    got = receiver.receive(sender.send(msg))
    assert got == msg
    return got


def run(mode: Mode, requested: RequestedMode, card: list[CardData]) -> tuple[Session, Session]:
    phone, pda = PhoneSession(), PdaSession()
    exchange(phone, pda, alert(requested, None if mode is Mode.SLOW else A8))
    exchange(pda, phone, AlertReply(mode))
    for chunk in card:
        exchange(phone, pda, chunk)
    exchange(
        pda,
        phone,
        PdaOps(
            (Put(0, None, "Alexander Macdonald", "+4930123"), Put(1, 3, "Bo", "5"), Delete(2, 4))
        ),
    )
    exchange(
        phone,
        pda,
        Applied((Stored(0, 7, "Alexander", "+4930123"), Skipped(1, "card_full"), Removed(2))),
    )
    exchange(pda, phone, Prepared())
    exchange(phone, pda, Committed())
    exchange(pda, phone, Done(1, 0, 0, 0, 1))
    return phone, pda


FAST_DATA = [
    CardData((CardRecord(1, "Ann", "1"), CardDeleted(2)), complete=False, more=True),
    CardData((CardRecord(5, "Eve", "+49"),), complete=False),
]
FULL_DATA = [
    CardData((CardRecord(1, "Ann", "1"),), complete=True, more=True),
    CardData((), complete=True, more=True),
    CardData((CardRecord(2, "Bob", "2"),), complete=True),
]


@pytest.mark.parametrize(
    ("mode", "requested", "data"),
    [
        (Mode.FAST, RequestedMode.AUTO, FAST_DATA),
        (Mode.SLOW, RequestedMode.AUTO, FULL_DATA),
        (Mode.SLOW, RequestedMode.SLOW, FULL_DATA),
        (Mode.REFRESH_FROM_CARD, RequestedMode.REFRESH_FROM_CARD, FULL_DATA),
        (Mode.REFRESH_FROM_PDA, RequestedMode.REFRESH_FROM_PDA, FULL_DATA),
    ],
)
def test_every_mode_runs_to_done(mode: Mode, requested: RequestedMode, data: list[CardData]):
    phone, pda = run(mode, requested, data)
    assert phone.state is pda.state is State.DONE
    assert phone.mode is pda.mode is mode
    assert phone.finished
    assert pda.finished


def _to_applying() -> tuple[PhoneSession, PdaSession]:
    phone, pda = PhoneSession(), PdaSession()
    exchange(phone, pda, alert())
    exchange(pda, phone, AlertReply(Mode.FAST))
    exchange(phone, pda, CardData((), complete=False))
    exchange(pda, phone, PdaOps((Put(0, None, "Ann", "1"), Delete(1, 4))))
    return phone, pda


# (who sends the offending message, how to get there, the message)
OUT_OF_ORDER: list[tuple[str, int, Message]] = [
    ("phone", 0, Committed()),  # before Alert
    ("pda", 0, AlertReply(Mode.SLOW)),  # the PDA never speaks first
    ("phone", 1, alert()),  # a second Alert
    ("phone", 2, Applied(())),  # skipping CardData and PdaOps
    ("pda", 3, Prepared()),  # skipping Applied
    ("phone", 4, Committed()),  # before Prepared
    ("pda", 5, Done(0, 0, 0, 0, 0)),  # before Committed
    ("phone", 6, CardData((), complete=False)),  # after the commit
]


def _advance(steps: int) -> tuple[PhoneSession, PdaSession]:
    script: list[tuple[str, Message]] = [
        ("phone", alert()),
        ("pda", AlertReply(Mode.FAST)),
        ("phone", CardData((), complete=False)),
        ("pda", PdaOps(())),
        ("phone", Applied(())),
        ("pda", Prepared()),
        ("phone", Committed()),
    ]
    phone, pda = PhoneSession(), PdaSession()
    for who, msg in script[:steps]:
        exchange(phone, pda, msg) if who == "phone" else exchange(pda, phone, msg)
    return phone, pda


@pytest.mark.parametrize(("who", "steps", "msg"), OUT_OF_ORDER)
def test_out_of_order_blames_the_right_side(who: str, steps: int, msg: Message) -> None:
    phone, pda = _advance(steps)
    sender, receiver = (phone, pda) if who == "phone" else (pda, phone)
    before = sender.state
    # The sender's core refuses it: our own fault.
    with pytest.raises(LocalProtocolError, match="may not send"):
        sender.send(msg)
    assert sender.state is State.ERROR
    assert before is not State.ERROR
    # A peer that skips its core and sends it anyway: the receiver blames the peer.
    with pytest.raises(RemoteProtocolError, match="may not send"):
        receiver.receive(encode(msg))
    assert receiver.state is State.ERROR
    assert receiver.error is not None
    # Dead means dead: even a valid next message is refused; no commit can happen.
    with pytest.raises(RemoteProtocolError, match="after the session ended"):
        receiver.receive(encode(Committed()))
    assert receiver.state is State.ERROR


def test_malformed_frame_kills_the_session_and_abort_can_still_tell_the_peer() -> None:
    phone, pda = _to_applying()
    with pytest.raises(RemoteProtocolError, match="malformed CBOR"):
        pda.receive(b"\x9f\x01")
    assert pda.state is State.ERROR
    frame = pda.send(Abort("protocol_error", "malformed CBOR"))
    assert phone.receive(frame) == Abort("protocol_error", "malformed CBOR")
    assert phone.state is State.ABORTED
    with pytest.raises(LocalProtocolError, match="after the session ended"):
        phone.send(Applied(()))


@pytest.mark.parametrize(
    ("setup", "msg", "fragment"),
    [
        ("alerted", AlertReply(Mode.FAST), None),
        ("alerted_refresh", AlertReply(Mode.SLOW), "does not answer a request for"),
        ("alerted_nolast", AlertReply(Mode.FAST), "fast mode without a last anchor"),
        ("fast", CardData((CardRecord(21, "X", "1"),), complete=False), "beyond the card's 20"),
        (
            "fast",
            CardData((CardRecord(2, "Much too long", "1"),), complete=False),
            "longer than the alpha field",
        ),
        ("fast", CardData((), complete=True), "does not fit mode"),
        ("planning", PdaOps((Put(0, 21, "X", "1"),)), "beyond the card's"),
        ("planning", PdaOps((Put(0, 3, "X", "1"), Delete(1, 3))), "written twice"),
    ],
)
def test_context_checks(setup: str, msg: Message, fragment: str | None) -> None:
    phone, pda = PhoneSession(), PdaSession()
    requested = RequestedMode.REFRESH_FROM_PDA if setup == "alerted_refresh" else RequestedMode.AUTO
    exchange(phone, pda, alert(requested, None if setup == "alerted_nolast" else A8))
    if setup in ("fast", "planning"):
        exchange(pda, phone, AlertReply(Mode.FAST))
    if setup == "planning":
        exchange(phone, pda, CardData((), complete=False))
    sender, receiver = (phone, pda) if isinstance(msg, CardData) else (pda, phone)
    if fragment is None:
        assert exchange(sender, receiver, msg) == msg
        return
    with pytest.raises(LocalProtocolError, match=fragment):
        sender.send(msg)
    with pytest.raises(RemoteProtocolError, match=fragment):
        receiver.receive(encode(msg))


def test_card_data_chunks_may_not_repeat_a_record() -> None:
    phone, pda = _advance(2)
    exchange(phone, pda, CardData((CardRecord(1, "A", "1"),), complete=False, more=True))
    with pytest.raises(RemoteProtocolError, match="record 1 sent twice"):
        pda.receive(encode(CardData((CardDeleted(1),), complete=False)))


@pytest.mark.parametrize(
    ("results", "fragment"),
    [
        ((Stored(0, 7, "Ann", "1"),), "do not answer ops"),
        ((Stored(0, 7, "Ann", "1"), Stored(1, 8, "X", "1")), "does not match its op"),
        ((Removed(0), Removed(1)), "does not match its op"),
        ((Stored(0, 21, "Ann", "1"), Removed(1)), "beyond the card's"),
        ((Stored(0, 7, "Annabelle Lee", "1"), Removed(1)), "longer than the alpha field"),
    ],
)
def test_applied_must_answer_the_ops(results: tuple[Stored | Removed, ...], fragment: str):
    _phone, pda = _to_applying()
    with pytest.raises(RemoteProtocolError, match=fragment):
        pda.receive(encode(Applied(results)))
    assert pda.state is State.ERROR
    ok = Applied((Stored(0, 7, "Ann", "1"), Skipped(1, "not encodable")))
    phone2, pda2 = _to_applying()
    assert exchange(phone2, pda2, ok) == ok
    assert pda2.state is State.PREPARING


def test_either_side_may_abort_midway_and_nothing_follows() -> None:
    phone, pda = _to_applying()
    exchange(pda, phone, Abort("cancelled", "user stopped it"))
    assert phone.state is pda.state is State.ABORTED
    assert phone.abort == Abort("cancelled", "user stopped it")
    with pytest.raises(RemoteProtocolError, match="after the session ended"):
        pda.receive(encode(Committed()))
