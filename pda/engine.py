"""The PDA's sync engine: one PDA-side session over a contact store and the card state.

Synchronous and transport-free: the server feeds it each frame the phone sent
(`handle(frame)`) and sends back the frames it returns. The order of durable
effects is what makes a crash anywhere harmless:

1. final CardData: the card's changes go into the store (idempotent: contacts
   made from card records get deterministic uids), then PdaOps go out;
2. Applied: the proposed anchor, the new map and projections are stored as
   *pending* in one transaction, then Prepared goes out;
3. Committed (or, after a lost Committed, the next Alert showing the card's
   last anchor equal to our pending one): pending becomes last, then Done.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import structlog

from syncproto import (
    SET_ASIDE_SINCE,
    Abort,
    Alert,
    AlertReply,
    Applied,
    CardData,
    CardRecord,
    Committed,
    CreateContact,
    DeleteContact,
    Done,
    Entry,
    Message,
    Mode,
    PdaSession,
    Plan,
    PlanError,
    Policy,
    Prepared,
    ProtocolError,
    RequestedMode,
    State,
    Synced,
    UpdateContact,
    plan,
    settle,
)
from syncproto.codes import ErrorCode
from syncproto.messages import wire_text

from .cardstate import CardState, CardStateDB, CardStateError
from .errors import PdaError
from .store import (
    ContactExistsError,
    ContactInfo,
    ContactNotFoundError,
    ContactStore,
    Projection,
    StoreError,
)

__all__ = ["NameFits", "SyncEngine", "SyncEngineError", "SyncOutcome", "prefix_fits"]

log = structlog.get_logger(__name__)

# GSM 03.38 default alphabet (one septet each) and its escape table (two).
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€")


def prefix_fits(name: str, alpha_len: int) -> str:
    """The longest prefix of `name` an alpha field of `alpha_len` bytes holds.

    GSM default alphabet (escaped characters count two) when every character
    is in it, else UCS2 form `80` (one tag byte, two bytes a character). The
    phone's codec is the authority: it reports what it stored, and this is used
    only to recognise, by content, a record the card shortened.
    """
    if all(ch in _GSM or ch in _GSM_EXT for ch in name):
        used, out = 0, []
        for ch in name:
            used += 2 if ch in _GSM_EXT else 1
            if used > alpha_len:
                break
            out.append(ch)
        return "".join(out)
    return name[: max(0, (alpha_len - 1) // 2)]


class NameFits:
    """A fitting rule (`fits(name, alpha_len)`) that remembers its answers.

    Fitting a name to the card runs the card codec (GSM 7-bit or one of three UCS2
    forms, whichever is longest): about a millisecond a name. The server keeps one
    of these across sessions, so a sync fits only names it has not seen before.
    The answer depends on the name and the alpha length only, so that is the key
    (contacts sharing a name share it). At most `limit` answers are kept; past
    that the memory starts over, which costs time, never a wrong answer.
    """

    def __init__(self, fits: Callable[[str, int], str], limit: int = 200_000) -> None:
        self._fits = fits
        self._limit = limit
        self._memo: dict[tuple[str, int], str] = {}
        self.computed = 0  # how many names were really fitted (tests, benchmarks)

    def __call__(self, name: str, alpha_len: int) -> str:
        """The longest prefix of `name` the card holds in `alpha_len` bytes."""
        key = (name, alpha_len)
        try:
            return self._memo[key]
        except KeyError:
            pass
        if len(self._memo) >= self._limit:
            self._memo.clear()
        self.computed += 1
        out = self._memo[key] = self._fits(name, alpha_len)
        return out


class SyncEngineError(PdaError):
    """The PDA could not complete a sync (store or state failure); the phone got an Abort."""


@dataclass(frozen=True)
class SyncOutcome:
    """What one finished session did on the PDA's side."""

    mode: Mode
    added: int
    modified: int
    deleted: int
    conflicts: int
    skipped: int
    set_aside: int = 0  # files the store could not use (named in its bad_files)


def _projection(e: Entry) -> Projection:
    return Projection(e.name, e.number)


class _Entries(Mapping[str, Entry]):
    """Every contact's projection as the planner's Entry, made only when the planner looks.

    A sync looks at the mapped contacts and at those the card has room for, not at
    every contact of a large book. `frozen` adds the contacts whose files cannot be
    read now, as the map remembers them.
    """

    def __init__(self, contacts: Mapping[str, ContactInfo], frozen: Mapping[str, Entry]) -> None:
        self._contacts = contacts
        self._frozen = frozen

    def __getitem__(self, uid: str) -> Entry:
        info = self._contacts.get(uid)
        if info is None:
            return self._frozen[uid]
        return Entry(info.projection.name, info.projection.number)

    def __contains__(self, uid: object) -> bool:
        return uid in self._contacts or uid in self._frozen

    def __iter__(self) -> Iterator[str]:
        return itertools.chain(self._contacts, self._frozen)

    def __len__(self) -> int:
        return len(self._contacts) + len(self._frozen)


class SyncEngine:
    """Drives one PDA-side session; make a new one per session."""

    def __init__(
        self,
        store: ContactStore,
        state: CardStateDB,
        *,
        policy: Policy = Policy.DUPLICATE,
        propagate_deletes: bool = True,
        fits: Callable[[str, int], str] = prefix_fits,
    ) -> None:
        self.store = store
        self.state = state
        self.policy = policy
        self.propagate_deletes = propagate_deletes
        self.fits = fits
        self.session = PdaSession()
        self.outcome: SyncOutcome | None = None
        self.error: Exception | None = None  # what ended the session early, either side
        self._alert: Alert | None = None
        self._synced: dict[int, Synced] = {}
        self._card: dict[int, Entry | None] = {}
        self._plan: Plan | None = None
        self._contacts: dict[str, ContactInfo] = {}
        self._skipped = 0

    @property
    def finished(self) -> bool:
        """True once the session is over (done, aborted or failed)."""
        return self.session.finished

    def handle(self, frame: bytes) -> list[bytes]:
        """Take one frame from the phone; return the frames to send back."""
        try:
            msg = self.session.receive(frame)
        except ProtocolError as exc:
            if self.session.state is not State.ERROR or self.session.abort is not None:
                return []  # the session had ended already; the phone knows (or never will)
            self.error = exc
            return [self.session.send(Abort(exc.code, wire_text(str(exc))))]
        try:
            reply = self._dispatch(msg)
        except PlanError as exc:  # the phone's results contradict the map: its fault
            return self._fail(ErrorCode.PROTOCOL_ERROR, exc)
        except (StoreError, CardStateError) as exc:
            return self._fail(ErrorCode.INTERNAL, exc)
        if reply is None:
            return []
        try:
            return [self.session.send(reply)]
        except ProtocolError as exc:  # a reply we must not send: a bug here, not the phone's
            self.error = exc
            return [self.session.send(Abort(ErrorCode.INTERNAL, wire_text(str(exc))))]

    def _fail(self, code: ErrorCode, exc: Exception) -> list[bytes]:
        self.error = SyncEngineError(f"{code}: {exc}")
        self.error.__cause__ = exc
        return [self.session.send(Abort(code, wire_text(str(exc))))]

    def _dispatch(self, msg: Message) -> Message | None:
        if isinstance(msg, Alert):
            return AlertReply(self._decide(msg))
        if isinstance(msg, CardData):
            for e in msg.entries:
                self._card[e.record] = (
                    # A blank name is no name (as the phone reads one): never a contact's name.
                    Entry(e.name if e.name.strip() else "", e.number or None)
                    if isinstance(e, CardRecord)
                    else None
                )
            return None if msg.more else self._plan_and_apply()
        if isinstance(msg, Applied):
            return self._prepare(msg)
        if isinstance(msg, Committed):
            return self._commit()
        if isinstance(msg, Abort):
            self.error = SyncEngineError(f"phone aborted: {msg.code}: {msg.message}")
        return None

    def _decide(self, alert: Alert) -> Mode:
        self._alert = alert
        # Scan first: that is what notices a vdir re-created under a running server. The
        # plan uses this same scan, so the wipe check and the plan see one address book.
        contacts = self._contacts = self.store.scan()
        st = self.state.load(alert.iccid, alert.db)
        replaced = st.store_id is not None and st.store_id != self.store.store_id
        # Every .vcf gone but our dot-files kept reads as "a person deleted everything";
        # far likelier a wipe, and emptying the card for it is the one mistake that loses
        # data. So it counts as a new store: slow, nothing deleted, the card refills it.
        # Files set aside that may hold mapped contacts are no wipe: their contacts are
        # left alone below, and refilling the vdir from the card would copy them.
        emptied = (
            not contacts
            and bool(st.synced or st.pending_synced)
            and not any(self.store.unreadable(s.uid) for s in st.synced.values())
        )
        if replaced or emptied:
            log.warning(
                "address book wiped or replaced: slow sync, no deletions",
                iccid=alert.iccid,
                emptied=emptied,
            )
            st = CardState()  # its map means nothing now
        if alert.last is not None and alert.last == st.pending:
            # The card took STORESYNC but our Committed got lost: the card is right.
            self.state.promote(alert.iccid, alert.db, alert.last)
            st = CardState(st.store_id, st.pending, None, st.pending_synced, {})
        self._synced = dict(st.synced)
        fast = alert.last is not None and alert.last == st.last
        return {
            RequestedMode.AUTO: Mode.FAST if fast else Mode.SLOW,
            RequestedMode.SLOW: Mode.SLOW,
            RequestedMode.REFRESH_FROM_CARD: Mode.REFRESH_FROM_CARD,
            RequestedMode.REFRESH_FROM_PDA: Mode.REFRESH_FROM_PDA,
        }[alert.requested]

    def _new_uid(self, record: int, entry: Entry) -> str:
        # Deterministic: a sync repeated after a crash makes the same uid, not a copy.
        assert self._alert is not None
        a = self._alert
        key = "\x1f".join([a.iccid, str(a.db), str(record), entry.name, entry.number or ""])
        return "simsync-" + hashlib.sha256(key.encode()).hexdigest()[:32]

    def _plan_and_apply(self) -> Message:
        alert, mode = self._alert, self.session.mode
        assert alert is not None
        assert mode is not None
        # A mapped contact whose file cannot be read now is not a deletion: it counts
        # as unchanged, and nothing is written to its file (the person's to repair).
        frozen = {
            s.uid: s.pda
            for s in self._synced.values()
            if s.uid not in self._contacts and self.store.unreadable(s.uid)
        }
        for uid in frozen:
            log.warning("contact file unreadable: left alone", uid=uid)
        pda = _Entries(self._contacts, frozen)
        self._plan = plan(
            mode=mode,
            card=self._card,
            pda=pda,
            synced=self._synced,
            fits=lambda name: self.fits(name, alert.alpha_len),
            new_uid=self._new_uid,
            # The phone's configured policy for this PDA, when it sends one, wins.
            policy=Policy(alert.policy or self.policy),
            propagate_deletes=self.propagate_deletes,
            # New records beyond the card's room could never be placed: they wait,
            # skipped and counted, instead of costing a Put (and a search) each.
            capacity=self._room(alert, mode),
        )
        with self.store.batch():  # the store's bookkeeping of these writes: one transaction
            for a in self._plan.to_pda:
                if a.uid not in frozen:
                    self._apply(a)
        return self._plan.ops()

    def _apply(self, a: CreateContact | UpdateContact | DeleteContact) -> None:
        """One change from the card into the store (idempotent: a repeated sync is harmless)."""
        if isinstance(a, DeleteContact):
            with contextlib.suppress(ContactNotFoundError):  # gone already: goal reached
                self.store.delete(a.uid)
            return
        # This session's scan says whether the contact exists (no second look per contact);
        # one made by an attempt that crashed is rewritten, not copied.
        if isinstance(a, CreateContact) and a.uid not in self._contacts:
            with contextlib.suppress(ContactExistsError):
                self.store.create(_projection(a.entry), uid=a.uid)
                return
        try:
            self.store.update_projection(a.uid, _projection(a.entry))
        except ContactNotFoundError:
            self.store.create(_projection(a.entry), uid=a.uid)

    def _room(self, alert: Alert, mode: Mode) -> int:
        """Empty records on the card before this sync's ops, as well as the phone knows."""
        if mode is not Mode.FAST:  # the listing is complete: every other record is empty
            return max(0, alert.records - len(self._card))
        # The phone counts in its local copy as it stood at the Alert, which has not seen
        # the records another terminal emptied since (the changes below): room for a
        # waiting contact in this very sync. Should the copy have seen one already, the
        # count is one too high: a Put the phone answers Skipped, still counted right.
        emptied = sum(1 for r, e in self._card.items() if e is None and r in self._synced)
        return min(alert.records, alert.free_records + emptied)

    def _prepare(self, applied: Applied) -> Message:
        assert self._alert is not None
        assert self._plan is not None
        settled = settle(self._plan, applied)
        self._skipped = settled.skipped
        a = self._alert
        self.state.prepare(a.iccid, a.db, self.store.store_id, a.proposed, settled.synced)
        return Prepared()

    def _commit(self) -> Message:
        assert self._alert is not None
        assert self._plan is not None
        self.state.promote(self._alert.iccid, self._alert.db, self._alert.proposed)
        added, modified, deleted = self._plan.counts()
        set_aside = len(self.store.bad_files)
        p = self._plan
        self.outcome = SyncOutcome(
            p.mode, added, modified, deleted, p.conflicts, self._skipped, set_aside
        )
        # A 1.0 phone reads exactly five counts; it gets no set_aside.
        sent = set_aside if self._alert.version >= SET_ASIDE_SINCE else None
        return Done(added, modified, deleted, self._plan.conflicts, self._skipped, sent)
