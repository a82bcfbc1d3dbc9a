"""Hypothesis strategies for every protocol message."""

from __future__ import annotations

from hypothesis import strategies as st

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
    Mode,
    PdaOps,
    Policy,
    Prepared,
    Put,
    Removed,
    RequestedMode,
    Skipped,
    Stored,
)
from syncproto.messages import MAX_NAME, MAX_NUMBER

records = st.integers(1, 255)
refs = st.integers(0, 2**32 - 1)
anchors = st.binary(min_size=8, max_size=8)
# Any characters but control ones and lone surrogates (emoji included), up to MAX_NAME.
names = st.one_of(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=MAX_NAME, max_size=MAX_NAME),
    st.text(st.sampled_from("ab \U0001f600\u00e9\u0416"), min_size=1, max_size=8),
)
# The card's alphabet; EXT1 chains make numbers longer than 20 digits real.
numbers = st.from_regex(r"\+?[0-9*#,?!]{0,20}", fullmatch=True) | st.from_regex(
    rf"\+?[0-9*#,?!]{{21,{MAX_NUMBER - 1}}}", fullmatch=True
)
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    recs = draw(records)
    last = draw(st.none() | anchors)
    proposed = draw(anchors.filter(lambda a: a != last))
    return Alert(
        iccid=draw(st.from_regex(r"[0-9]{1,22}", fullmatch=True)),
        db=draw(st.integers(0, 0xFFFF)),
        last=last,
        proposed=proposed,
        requested=draw(st.sampled_from(RequestedMode)),
        records=recs,
        alpha_len=draw(st.integers(0, 241)),
        change_detection=draw(st.booleans()),
        free_records=draw(st.integers(0, recs)),
        version=(1, draw(st.integers(0, 9))),
        policy=draw(st.none() | st.sampled_from(Policy)),
    )


@st.composite
def card_data(draw: st.DrawFn) -> CardData:
    complete = draw(st.booleans())
    recs = draw(st.lists(records, unique=True, max_size=20))
    entries: list[CardRecord | CardDeleted] = []
    for r in recs:
        if not complete and draw(st.booleans()):
            entries.append(CardDeleted(r))
        else:
            # A name only (number ""), a number only (name ""), or both: never neither.
            kind = draw(st.sampled_from(["both", "name", "number"]))
            name = "" if kind == "number" else draw(names)
            number = "" if kind == "name" else draw(numbers.filter(bool))
            entries.append(CardRecord(r, name, number))
    return CardData(tuple(entries), complete, draw(st.booleans()))


@st.composite
def pda_ops(draw: st.DrawFn) -> PdaOps:
    rs = draw(st.lists(refs, unique=True, max_size=20))
    ops: list[Put | Delete] = []
    for ref in rs:
        if draw(st.booleans()):
            ops.append(Put(ref, draw(st.none() | records), draw(names), draw(numbers)))
        else:
            ops.append(Delete(ref, draw(records)))
    return PdaOps(tuple(ops))


@st.composite
def applied(draw: st.DrawFn) -> Applied:
    rs = draw(st.lists(refs, unique=True, max_size=20))
    out: list[Stored | Removed | Skipped] = []
    for ref in rs:
        kind = draw(st.integers(0, 2))
        if kind == 0:
            out.append(Stored(ref, draw(records), draw(names), draw(numbers)))
        elif kind == 1:
            out.append(Removed(ref))
        else:
            out.append(Skipped(ref, draw(texts)))
    return Applied(tuple(out))


counts = st.integers(0, 1_000_000)
messages = st.one_of(
    alerts(),
    st.builds(AlertReply, st.sampled_from(Mode)),
    card_data(),
    pda_ops(),
    applied(),
    st.just(Prepared()),
    st.just(Committed()),
    st.builds(Done, counts, counts, counts, counts, counts, st.none() | counts),
    st.builds(Abort, st.from_regex(r"[a-z][a-z_]{0,31}", fullmatch=True), texts),
)
