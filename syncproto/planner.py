"""The planner: what to do on each side, from two snapshots and the per-card map.

Pure: no I/O, no codecs. Plan, then act (vdirsyncer's `_get_actions`): `plan()`
returns actions for the PDA's store and ops for the card; the engine executes
them, and `settle()` turns the phone's `Applied` answer into the new map.

Terms: a *record* is a card slot (1..records); `Synced(uid, card, pda)` is what
the last sync left for a record: the contact it maps to, what the card held
then, and the contact's projection then. Both are kept because a name the card
holds shortened differs from the contact's full name, and neither must look
like a change. Rules and their reasons are in docs/protocol.md ("Planner").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import PlanError
from .messages import (
    MAX_NAME,
    Applied,
    Delete,
    Mode,
    PdaOps,
    Policy,
    Put,
    Removed,
    Skipped,
    Stored,
)

__all__ = [
    "CardDelete",
    "CardPut",
    "CreateContact",
    "DeleteContact",
    "Entry",
    "Plan",
    "Policy",
    "Settled",
    "Synced",
    "UpdateContact",
    "equivalent",
    "plan",
    "settle",
]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Entry:
    """A name and a number: a card record's content or a contact's projection."""

    name: str
    number: str | None  # None: no number (a card record holding a name only)


@dataclass(frozen=True)
class Synced:
    """The state of one record after the last sync."""

    uid: str
    card: Entry  # what the card held
    pda: Entry  # the contact's projection


@dataclass(frozen=True)
class CreateContact:
    """Make a contact on the PDA from card record `record` (the uid is deterministic)."""

    uid: str
    record: int
    entry: Entry


@dataclass(frozen=True)
class UpdateContact:
    """Set a contact's projection from its card record."""

    uid: str
    record: int
    entry: Entry


@dataclass(frozen=True)
class DeleteContact:
    """Remove a contact whose record a person emptied on the card."""

    uid: str
    record: int


PdaAction = CreateContact | UpdateContact | DeleteContact


@dataclass(frozen=True)
class CardPut:
    """Write `entry` of contact `uid` to `record` (None: a free slot).

    `fallback` is the map entry for `record` if the phone skips the write.
    """

    uid: str
    record: int | None
    entry: Entry
    fallback: Synced | None


@dataclass(frozen=True)
class CardDelete:
    """Empty a record whose contact a person deleted on the PDA.

    `stays` names a contact that was not deleted but keeps nothing the card can hold
    (no number, and a name that fits as blanks): it stays on the PDA only, and is
    counted skipped like any contact without a number.
    """

    record: int
    fallback: Synced
    stays: str | None = None


CardAction = CardPut | CardDelete


@dataclass(frozen=True)
class Plan:
    """Everything one sync will do, before any of it is done."""

    mode: Mode
    to_pda: tuple[PdaAction, ...]
    to_card: tuple[CardAction, ...]  # ref of each op = its index here
    synced: Mapping[int, Synced]  # map entries already settled (not waiting on the card)
    conflicts: int
    skipped: tuple[str, ...]  # uids that stay on the PDA only (no number)
    #: The card's rule for what it holds of a name (the planner's ``fits``).
    fits: Callable[[str], str] = field(default=lambda name: name, compare=False)

    def ops(self) -> PdaOps:
        """The PdaOps message for these card actions."""
        out: list[Put | Delete] = []
        for ref, a in enumerate(self.to_card):
            if isinstance(a, CardPut):
                # Names go as the card will hold them: exactly what `fits` (and so content
                # matching) predicts, one line, and far inside the wire's bound.
                name = _CONTROL.sub(" ", self.fits(a.entry.name))[:MAX_NAME]
                out.append(Put(ref, a.record, name, a.entry.number or ""))
            else:
                out.append(Delete(ref, a.record))
        return PdaOps(tuple(out))

    def counts(self) -> tuple[int, int, int]:
        """(added, modified, deleted) on the PDA."""
        kinds = [type(a) for a in self.to_pda]
        return (kinds.count(CreateContact), kinds.count(UpdateContact), kinds.count(DeleteContact))


def as_contact(card: Entry) -> Entry:
    """The projection of the contact a card record becomes.

    A record with a number but no name (common on SIMs) cannot be a contact without
    a name (vCard needs FN): it is named by its number, and the card keeps no name.
    """
    return card if card.name else Entry(card.number or "", card.number)


def equivalent(card: Entry, pda: Entry, fits: Callable[[str], str]) -> bool:
    """True when the card record is what the card would hold for this projection."""
    if card.number != pda.number:
        return False
    # `fits` only when the names differ: it runs the card codec, and most names fit whole.
    return (
        card.name == pda.name
        or card.name == fits(pda.name)
        or (not card.name and pda.name == card.number)
    )


def _merge(card: Entry, pda: Entry, fits: Callable[[str], str]) -> Entry:
    # The card's name wins only if it is not just the shortened form of ours; a card
    # record without a name keeps the contact's own (or its number-name follows).
    if not card.name:
        return Entry(as_contact(card).name if pda.name == pda.number else pda.name, card.number)
    name = pda.name if card.name == pda.name or card.name == fits(pda.name) else card.name
    return Entry(name, card.number)


@dataclass
class _Builder:
    mode: Mode
    pda: Mapping[str, Entry]
    fits: Callable[[str], str]
    new_uid: Callable[[int, Entry], str]
    to_pda: list[PdaAction] = field(default_factory=list)
    deletes: list[CardAction] = field(default_factory=list)
    puts: list[CardAction] = field(default_factory=list)
    new_uids: list[str] = field(default_factory=list)  # contacts waiting for free records
    synced: dict[int, Synced] = field(default_factory=dict)
    conflicts: int = 0
    skipped: list[str] = field(default_factory=list)
    made: set[str] = field(default_factory=set)
    # Records that need a contact and contacts that need a record. They are matched
    # by content (with each other and with the unmapped ones) before anything is
    # copied, so a sync repeated after a crash finds what the first attempt made.
    orphan_records: list[tuple[int, str | None]] = field(default_factory=list)
    orphan_contacts: list[tuple[str, int | None]] = field(default_factory=list)

    def keep(self, record: int, uid: str, card: Entry, pda: Entry) -> None:
        self.synced[record] = Synced(uid, card, pda)

    def update(self, uid: str, record: int, card: Entry, pda: Entry) -> None:
        merged = _merge(card, pda, self.fits)
        if merged != pda:
            self.to_pda.append(UpdateContact(uid, record, merged))
        self.keep(record, uid, card, merged)

    def create(self, record: int, card: Entry, uid: str | None = None) -> None:
        if uid is None:
            base = self.new_uid(record, card)
            uid, n = base, 1
            while uid in self.pda or uid in self.made:  # deterministic, never a clash
                n += 1
                uid = f"{base}-{n}"
        self.made.add(uid)
        contact = as_contact(card)
        self.to_pda.append(CreateContact(uid, record, contact))
        self.keep(record, uid, card, contact)

    def put(self, uid: str, record: int, pda: Entry, fallback: Synced | None) -> None:
        if pda.number is None and not self.fits(pda.name):
            # Written, the record would be empty: the contact leaves the card instead.
            if fallback is None:  # its record is empty already
                self.skipped.append(uid)
            else:
                self.deletes.append(CardDelete(record, fallback, stays=uid))
            return
        self.puts.append(CardPut(uid, record, pda, fallback))

    def pair(self, r: int, s: Synced, c: Entry, p: Entry, policy: Policy) -> None:
        """Both the record and its contact still exist."""
        if equivalent(c, p, self.fits):
            self.keep(r, s.uid, c, p)
        elif (
            not c.name
            and c.number == p.number
            and (c, p) == (s.card, s.pda)
            and self.mode in (Mode.FAST, Mode.SLOW)
        ):
            # A name cleared on the card (the contact keeps its own: a vCard needs one),
            # settled and unchanged since: nothing to do. (Only this case: a pair that
            # differs otherwise is a skipped write waiting to be retried.)
            self.keep(r, s.uid, c, p)
        elif self.mode is Mode.REFRESH_FROM_CARD:
            self.update(s.uid, r, c, p)
        elif self.mode is Mode.REFRESH_FROM_PDA:
            self.put(s.uid, r, p, Synced(s.uid, c, s.pda))
        elif c != s.card and p == s.pda:
            self.update(s.uid, r, c, p)
        elif c == s.card:  # the PDA changed (or an earlier write was skipped: retry it)
            self.put(s.uid, r, p, s)
        else:
            self.conflicts += 1
            if policy == Policy.CARD_WINS:
                self.update(s.uid, r, c, p)
            elif policy == Policy.PDA_WINS:
                self.put(s.uid, r, p, Synced(s.uid, c, s.pda))
            else:  # both versions survive, each on both sides
                self.orphan_records.append((r, None))
                self.orphan_contacts.append((s.uid, None))


def _card_now(
    mode: Mode, card: Mapping[int, Entry | None], synced: Mapping[int, Synced]
) -> dict[int, Entry]:
    if mode is not Mode.FAST:
        if any(e is None for e in card.values()):
            raise PlanError("a complete card listing holds no deleted records")
        return {r: e for r, e in card.items() if e is not None}
    now = {r: s.card for r, s in synced.items()}
    for r, e in card.items():
        if e is None:
            now.pop(r, None)  # a 03 for a record we never knew is ignored
        else:
            now[r] = e
    return now


def plan(
    *,
    mode: Mode,
    card: Mapping[int, Entry | None],
    pda: Mapping[str, Entry],
    synced: Mapping[int, Synced],
    fits: Callable[[str], str],
    new_uid: Callable[[int, Entry], str],
    policy: Policy = Policy.DUPLICATE,
    propagate_deletes: bool = True,
    capacity: int | None = None,
) -> Plan:
    """Work out one sync.

    `card` is, in fast mode, the changed records (None = deleted, `03`); in the
    other modes every non-empty record. `pda` is every contact's projection by
    uid; `synced` the map from the last sync; `fits(name)` the longest prefix of
    `name` the card's alpha field holds (called lazily, once per name at most; a
    blank prefix counts as no name, see `_once_per_name`);
    `new_uid(record, entry)` a deterministic uid for a contact made from a card
    record. `capacity` is how many empty records the card has before this sync's
    ops (None: no limit). New records are asked for only up to that, plus the
    records this plan empties, minus the empty records it writes to by number:
    the rest are skipped this time (counted) and asked for again at the next sync.
    """
    fits = _once_per_name(fits)
    now = _card_now(mode, card, synced)
    b = _Builder(mode, pda, fits, new_uid)
    deletions = mode is Mode.FAST and propagate_deletes
    mapped: set[str] = set()
    for r, s in sorted(synced.items()):
        if s.uid in mapped:
            raise PlanError(f"contact {s.uid!r} mapped to two records")
        mapped.add(s.uid)
        c, p = now.get(r), pda.get(s.uid)
        if c is not None and p is not None:
            b.pair(r, s, c, p, policy)
        elif c is not None:  # the contact was deleted on the PDA
            if deletions and c == s.card:
                b.deletes.append(CardDelete(r, Synced(s.uid, c, s.pda)))
            else:  # modified-vs-deleted keeps the modified; slow/refresh never delete
                b.orphan_records.append((r, s.uid))
        elif p is not None:  # the record was emptied on the card
            if deletions and p == s.pda:
                b.to_pda.append(DeleteContact(s.uid, r))
            else:
                b.orphan_contacts.append((s.uid, r))
    _match_unmapped(b, now, synced, mapped)
    room = len(b.new_uids)
    if capacity is not None:
        # Writes by number into records that are empty now use up free records too.
        into_empty = sum(1 for a in b.puts if isinstance(a, CardPut) and a.record not in now)
        room = max(0, capacity + len(b.deletes) - into_empty)
    # Contacts waiting for a free record, by uid: the first `room` with a number get one;
    # the rest wait (skipped, counted), unlooked-at: a full card costs nothing per contact.
    new: list[str] = []
    for i, u in enumerate(b.new_uids):
        if len(new) >= room:
            b.skipped.extend(b.new_uids[i:])
            break
        if pda[u].number is None:
            b.skipped.append(u)
        else:
            new.append(u)
    new_puts = [CardPut(u, None, pda[u], None) for u in new]
    return Plan(
        mode,
        tuple(b.to_pda),
        (*b.deletes, *b.puts, *new_puts),
        b.synced,
        b.conflicts,
        tuple(b.skipped),
        fits,
    )


def _once_per_name(fits: Callable[[str], str]) -> Callable[[str], str]:
    """`fits`, asked at most once per distinct name during one plan.

    A name whose fitted prefix is blank ("  ж" in 5 bytes of UCS2 keeps "  ") is no
    name on the card: the phone reads a blank name as none, so it is offered as none.
    """
    memo: dict[str, str] = {}

    def cached(name: str) -> str:
        try:
            return memo[name]
        except KeyError:
            out = fits(name)
            out = memo[name] = out if out.strip() else ""
            return out

    return cached


def _match_unmapped(
    b: _Builder, now: Mapping[int, Entry], synced: Mapping[int, Synced], mapped: set[str]
) -> None:
    """Pair records and contacts that lack a partner by content before copying anything."""
    # record -> preferred uid of a contact made for it; uid -> preferred record.
    records: dict[int, str | None] = dict(b.orphan_records)
    records.update((r, None) for r in sorted(now) if r not in synced)
    contacts: dict[str, int | None] = dict(b.orphan_contacts)
    contacts.update(dict.fromkeys(sorted(u for u in b.pda if u not in mapped)))
    if records and contacts:  # content matching needs someone to match on both sides
        _pair_by_content(b, now, records, contacts)
    for r, uid in sorted(records.items()):
        b.create(r, now[r], uid)
    # By uid (already so, unless orphans came first). Contacts without a slot only queue
    # for a free record here: `plan` looks at them only while the card has room.
    if not b.orphan_contacts:
        b.new_uids = list(contacts)
        return
    for u, slot in sorted(contacts.items()):
        if slot is None:
            b.new_uids.append(u)
        else:
            b.put(u, slot, b.pda[u], None)


def _pair_by_content(
    b: _Builder,
    now: Mapping[int, Entry],
    records: dict[int, str | None],
    contacts: dict[str, int | None],
) -> None:
    """Pair unpaired records with unpaired contacts of equal content (both dicts shrink)."""
    # Every key demands equal numbers, so only contacts sharing a number with an unpaired
    # record are ever looked at (and fitted): the cost follows the records, not the book.
    wanted = {now[r].number for r in records}
    by_number: dict[str | None, list[str]] = {}
    for u in contacts:  # in `contacts` order: the first candidate wins, as before
        number = b.pda[u].number
        if number in wanted:
            by_number.setdefault(number, []).append(u)
    keys: list[Callable[[Entry], str]] = [
        lambda e: e.name,
        lambda e: b.fits(e.name),
        lambda e: "" if e.name == e.number else e.name,  # named by its number
    ]
    for key in keys:
        for r in list(records):
            entry = now[r]
            for u in by_number.get(entry.number, ()):
                if u in contacts and key(b.pda[u]) == entry.name:
                    del contacts[u], records[r]
                    b.keep(r, u, entry, b.pda[u])
                    break
    # Last, a record without a name pairs with any unpaired contact of its number: the
    # name lives on the PDA only (a name cleared on the card, or one never pushed).
    for r in sorted(records):
        if not now[r].name:
            same = (u for u in by_number.get(now[r].number, ()) if u in contacts)
            match = min(same, default=None)
            if match is not None:
                del contacts[match], records[r]
                b.keep(r, match, now[r], b.pda[match])


@dataclass(frozen=True)
class Settled:
    """The map after the phone applied the ops, and how many ops it skipped."""

    synced: Mapping[int, Synced]
    skipped: int


def settle(done: Plan, applied: Applied) -> Settled:
    """The new map once the phone reported `applied` for `done.ops()`."""
    synced = dict(done.synced)
    results = {r.ref: r for r in applied.results}
    if set(results) != set(range(len(done.to_card))):
        raise PlanError("results do not answer the planned ops")
    skipped = len(done.skipped)
    for ref, action in enumerate(done.to_card):
        res = results[ref]
        if isinstance(res, Skipped):
            skipped += 1
            if action.fallback is not None and action.record is not None:
                synced[action.record] = action.fallback
        elif isinstance(action, CardPut) and isinstance(res, Stored):
            if action.record is not None and res.record != action.record:
                raise PlanError(f"op {ref} was for record {action.record}, stored in {res.record}")
            if res.record in synced:
                raise PlanError(f"record {res.record} stored over a mapped record")
            stored = Entry(res.name, res.number or None)
            synced[res.record] = Synced(action.uid, stored, action.entry)
        elif isinstance(action, CardDelete) and isinstance(res, Removed):
            if action.stays is not None:  # off the card, on the PDA only
                skipped += 1
        else:
            raise PlanError(f"result {res!r} does not answer {action!r}")
    return Settled(synced, skipped)
