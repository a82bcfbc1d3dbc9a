"""The sync session state machines (sans-IO): one transition table, two roles.

Frames are delimited by the transport, so the core is frame-oriented:
`receive(frame) -> Message` and `send(msg) -> bytes`. Both check the message
against `TRANSITIONS` and against what the session already knows (the card's
geometry from the Alert, the op refs from PdaOps). Any violation raises the
ProtocolError of the side at fault and the session is dead: it refuses
everything afterwards except sending an `Abort` to tell the peer why.
"""

from __future__ import annotations

from enum import Enum

from .codec import decode, encode
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .messages import (
    Abort,
    Alert,
    AlertReply,
    Applied,
    CardData,
    CardRecord,
    Delete,
    Message,
    Mode,
    PdaOps,
    Put,
    Removed,
    RequestedMode,
    Skipped,
    Stored,
)

__all__ = ["TRANSITIONS", "PdaSession", "PhoneSession", "Role", "Session", "State"]


class Role(Enum):
    """Who speaks."""

    PHONE = "phone"
    PDA = "pda"


class State(Enum):
    """Where the conversation is (the same for both ends)."""

    IDLE = "idle"
    ALERTED = "alerted"  # Alert sent, AlertReply awaited
    CARD_DATA = "card-data"  # CardData chunks flowing
    PLANNING = "planning"  # PDA works out its ops
    APPLYING = "applying"  # phone writes the card
    PREPARING = "preparing"  # PDA stores the pending anchor
    COMMITTING = "committing"  # phone sends STORESYNC
    FINISHING = "finishing"  # PDA promotes pending to last
    DONE = "done"
    ABORTED = "aborted"  # an Abort went either way
    ERROR = "error"  # a ProtocolError killed the session


_TERMINAL = frozenset({State.DONE, State.ABORTED, State.ERROR})

#: The one transition table: (state, sender, message kind) -> next state.
#: "CardData+" is a CardData chunk with more=True. Abort is allowed from every
#: non-terminal state by either side (see Session._advance).
TRANSITIONS: dict[tuple[State, Role, str], State] = {
    (State.IDLE, Role.PHONE, "Alert"): State.ALERTED,
    (State.ALERTED, Role.PDA, "AlertReply"): State.CARD_DATA,
    (State.CARD_DATA, Role.PHONE, "CardData+"): State.CARD_DATA,
    (State.CARD_DATA, Role.PHONE, "CardData"): State.PLANNING,
    (State.PLANNING, Role.PDA, "PdaOps"): State.APPLYING,
    (State.APPLYING, Role.PHONE, "Applied"): State.PREPARING,
    (State.PREPARING, Role.PDA, "Prepared"): State.COMMITTING,
    (State.COMMITTING, Role.PHONE, "Committed"): State.FINISHING,
    (State.FINISHING, Role.PDA, "Done"): State.DONE,
}


def _kind(msg: Message) -> str:
    if isinstance(msg, CardData) and msg.more:
        return "CardData+"
    return type(msg).__name__


class Session:
    """One end of one sync session; use PhoneSession or PdaSession."""

    role: Role

    def __init__(self) -> None:
        self.state = State.IDLE
        self.alert: Alert | None = None
        self.mode: Mode | None = None
        self.ops: PdaOps | None = None
        self.error: ProtocolError | None = None
        self.abort: Abort | None = None  # the Abort that ended the session, either way
        self._card_records: set[int] = set()

    @property
    def peer(self) -> Role:
        """The other end's role."""
        return Role.PDA if self.role is Role.PHONE else Role.PHONE

    @property
    def finished(self) -> bool:
        """True once the session ended (done, aborted or dead)."""
        return self.state in _TERMINAL

    def send(self, msg: Message) -> bytes:
        """Validate `msg` as ours to send now and return its frame (LocalProtocolError if not)."""
        if isinstance(msg, Abort) and self.state is State.ERROR and self.abort is None:
            frame = encode(msg)  # telling the peer why we gave up is always allowed
            self.abort = msg
            return frame
        try:
            frame = encode(msg)
            self._advance(msg, self.role, LocalProtocolError)
        except LocalProtocolError as exc:
            self._die(exc)
            raise
        return frame

    def receive(self, frame: bytes) -> Message:
        """Decode and validate the peer's frame (RemoteProtocolError if it breaks the rules)."""
        try:
            msg = decode(frame)
            self._advance(msg, self.peer, RemoteProtocolError)
        except RemoteProtocolError as exc:
            self._die(exc)
            raise
        return msg

    def _die(self, exc: ProtocolError) -> None:
        if self.state not in _TERMINAL:
            self.state = State.ERROR
            self.error = exc

    def _advance(self, msg: Message, sender: Role, fault: type[ProtocolError]) -> None:
        if self.state in _TERMINAL:
            raise fault(f"{type(msg).__name__} after the session ended ({self.state.value})")
        if isinstance(msg, Abort):
            self.state, self.abort = State.ABORTED, msg
            return
        nxt = TRANSITIONS.get((self.state, sender, _kind(msg)))
        if nxt is None:
            raise fault(f"{sender.value} may not send {_kind(msg)} in state {self.state.value}")
        self._check_context(msg, fault)
        self.state = nxt

    # Context checks: what a message may hold given the earlier ones.

    def _check_context(self, msg: Message, fault: type[ProtocolError]) -> None:
        if isinstance(msg, Alert):
            self.alert = msg
        elif isinstance(msg, AlertReply):
            self._check_mode(msg.mode, fault)
            self.mode = msg.mode
        elif isinstance(msg, CardData):
            self._check_card_data(msg, fault)
        elif isinstance(msg, PdaOps):
            self._check_ops(msg, fault)
            self.ops = msg
        elif isinstance(msg, Applied):
            self._check_applied(msg, fault)

    def _check_mode(self, mode: Mode, fault: type[ProtocolError]) -> None:
        assert self.alert is not None
        req = self.alert.requested
        allowed = {
            RequestedMode.AUTO: {Mode.FAST, Mode.SLOW},
            RequestedMode.SLOW: {Mode.SLOW},
            RequestedMode.REFRESH_FROM_CARD: {Mode.REFRESH_FROM_CARD},
            RequestedMode.REFRESH_FROM_PDA: {Mode.REFRESH_FROM_PDA},
        }[req]
        if mode not in allowed:
            raise fault(f"mode {mode.value} does not answer a request for {req.value}")
        if mode is Mode.FAST and self.alert.last is None:
            raise fault("fast mode without a last anchor on the card")

    def _check_card_data(self, msg: CardData, fault: type[ProtocolError]) -> None:
        assert self.alert is not None
        if msg.complete != (self.mode is not Mode.FAST):
            raise fault(f"complete={msg.complete} does not fit mode {self.mode}")
        for e in msg.entries:
            if e.record > self.alert.records:
                raise fault(f"record {e.record} beyond the card's {self.alert.records}")
            if e.record in self._card_records:
                raise fault(f"record {e.record} sent twice")
            if isinstance(e, CardRecord) and e.name and len(e.name) > self.alert.alpha_len:
                raise fault(f"record {e.record}: name longer than the alpha field")
            self._card_records.add(e.record)

    def _check_ops(self, msg: PdaOps, fault: type[ProtocolError]) -> None:
        assert self.alert is not None
        records: set[int] = set()
        for op in msg.ops:
            if op.record is None:
                continue
            if op.record > self.alert.records:
                raise fault(f"op {op.ref}: record {op.record} beyond the card's")
            if op.record in records:
                raise fault(f"op {op.ref}: record {op.record} written twice")
            records.add(op.record)

    def _check_applied(self, msg: Applied, fault: type[ProtocolError]) -> None:
        assert self.alert is not None
        assert self.ops is not None
        ops = {op.ref: op for op in self.ops.ops}
        got = {r.ref for r in msg.results}
        if got != set(ops):
            raise fault(f"results for refs {sorted(got)} do not answer ops {sorted(ops)}")
        used: set[int] = set()
        for r in msg.results:
            op = ops[r.ref]
            if isinstance(r, Skipped):
                continue
            if isinstance(op, Delete) != isinstance(r, Removed):
                raise fault(f"result for ref {r.ref} does not match its op")
            if isinstance(r, Stored):
                assert isinstance(op, Put)
                if r.record > self.alert.records:
                    raise fault(f"ref {r.ref}: record {r.record} beyond the card's")
                if op.record is not None and r.record != op.record:
                    raise fault(f"ref {r.ref}: stored in {r.record}, asked for {op.record}")
                if len(r.name) > self.alert.alpha_len:
                    raise fault(f"ref {r.ref}: stored name longer than the alpha field")
                if r.record in used:
                    raise fault(f"record {r.record} stored twice")
                used.add(r.record)


class PhoneSession(Session):
    """The phone's end: sends Alert, CardData, Applied, Committed."""

    role = Role.PHONE


class PdaSession(Session):
    """The PDA's end: sends AlertReply, PdaOps, Prepared, Done."""

    role = Role.PDA
