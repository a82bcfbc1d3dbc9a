"""Planner rules, one case each (the random model is in test_planner_model.py)."""

from __future__ import annotations

from typing import Any

import pytest

from syncproto import (
    Applied,
    CardDelete,
    CardPut,
    CreateContact,
    DeleteContact,
    Entry,
    Mode,
    Plan,
    PlanError,
    Policy,
    Removed,
    Skipped,
    Stored,
    Synced,
    UpdateContact,
    plan,
    settle,
)


def fits(name: str) -> str:
    return name[:5]


def uid_for(record: int, entry: Entry) -> str:
    return f"new-{record}"


def run(mode: Mode = Mode.FAST, **kw) -> Plan:
    args: dict[str, Any] = {
        "card": {},
        "pda": {},
        "synced": {},
        "policy": Policy.DUPLICATE,
        "propagate_deletes": True,
    }
    args.update(kw)
    return plan(mode=mode, fits=fits, new_uid=uid_for, **args)


ANN_CARD, ANN_PDA = Entry("Ann M", "1"), Entry("Ann Marie", "1")
S1 = {1: Synced("u1", ANN_CARD, ANN_PDA)}


def test_nothing_changed_means_nothing_to_do() -> None:
    p = run(pda={"u1": ANN_PDA}, synced=S1)
    assert (p.to_pda, p.to_card, p.conflicts) == ((), (), 0)
    assert p.synced == S1


def test_a_shortened_name_never_flows_back() -> None:
    # The card holds "Ann M" for "Ann Marie"; a slow sync lists it and must not rename her.
    p = run(Mode.SLOW, card={1: ANN_CARD}, pda={"u1": ANN_PDA}, synced=S1)
    assert (p.to_pda, p.to_card) == ((), ())
    # Only the number changed on the card: the PDA keeps the full name.
    p = run(card={1: Entry("Ann M", "2")}, pda={"u1": ANN_PDA}, synced=S1)
    assert p.to_pda == (UpdateContact("u1", 1, Entry("Ann Marie", "2")),)
    # A real rename on the card does flow.
    p = run(card={1: Entry("Anna", "1")}, pda={"u1": ANN_PDA}, synced=S1)
    assert p.to_pda == (UpdateContact("u1", 1, Entry("Anna", "1")),)


def test_pda_change_goes_to_the_same_record() -> None:
    p = run(pda={"u1": Entry("Ann Marie", "9")}, synced=S1)
    assert p.to_card == (CardPut("u1", 1, Entry("Ann Marie", "9"), S1[1]),)
    assert p.ops().ops[0].record == 1


@pytest.mark.parametrize(
    ("policy", "to_pda", "to_card"),
    [
        (Policy.CARD_WINS, (UpdateContact("u1", 1, Entry("Annie", "3")),), ()),
        (
            Policy.PDA_WINS,
            (),
            (
                CardPut(
                    "u1", 1, Entry("Ann Marie", "2"), Synced("u1", Entry("Annie", "3"), ANN_PDA)
                ),
            ),
        ),
        (
            Policy.DUPLICATE,
            (CreateContact("new-1", 1, Entry("Annie", "3")),),
            (CardPut("u1", None, Entry("Ann Marie", "2"), None),),
        ),
    ],
)
def test_conflict_per_policy(
    policy: Policy, to_pda: tuple[Any, ...], to_card: tuple[Any, ...]
) -> None:
    p = run(
        card={1: Entry("Annie", "3")}, pda={"u1": Entry("Ann Marie", "2")}, synced=S1, policy=policy
    )
    assert p.conflicts == 1
    assert p.to_pda == to_pda
    assert p.to_card == to_card


def test_both_sides_made_the_same_change_is_no_conflict() -> None:
    p = run(card={1: Entry("Ann M", "7")}, pda={"u1": Entry("Ann Marie", "7")}, synced=S1)
    assert (p.to_pda, p.to_card, p.conflicts) == ((), (), 0)
    assert p.synced[1] == Synced("u1", Entry("Ann M", "7"), Entry("Ann Marie", "7"))


def test_card_deletion_of_unchanged_contact_deletes_it_in_fast_mode_only() -> None:
    p = run(card={1: None}, pda={"u1": ANN_PDA}, synced=S1)
    assert p.to_pda == (DeleteContact("u1", 1),)
    for mode in (Mode.SLOW, Mode.REFRESH_FROM_CARD, Mode.REFRESH_FROM_PDA):
        p = run(mode, card={}, pda={"u1": ANN_PDA}, synced=S1)
        assert p.to_pda == ()
        assert p.to_card == (CardPut("u1", 1, ANN_PDA, None),)
    p = run(card={1: None}, pda={"u1": ANN_PDA}, synced=S1, propagate_deletes=False)
    assert p.to_pda == ()
    assert p.to_card == (CardPut("u1", 1, ANN_PDA, None),)


def test_modify_versus_delete_keeps_the_modified_one() -> None:
    # Deleted on the card, modified on the PDA: put back on the card.
    p = run(card={1: None}, pda={"u1": Entry("Ann Marie", "8")}, synced=S1)
    assert p.to_pda == ()
    assert p.to_card == (CardPut("u1", 1, Entry("Ann Marie", "8"), None),)
    # Deleted on the PDA, modified on the card: made again on the PDA (same uid).
    p = run(card={1: Entry("Ann M", "8")}, pda={}, synced=S1)
    assert p.to_card == ()
    assert p.to_pda == (CreateContact("u1", 1, Entry("Ann M", "8")),)
    # Deleted on the PDA, unchanged on the card: the record goes.
    p = run(pda={}, synced=S1)
    assert p.to_card == (CardDelete(1, S1[1]),)


def test_a_deletion_for_an_unknown_record_is_ignored() -> None:
    p = run(card={7: None}, pda={"u1": ANN_PDA}, synced=S1)
    assert (p.to_pda, p.to_card) == ((), ())


def test_slow_sync_with_no_map_matches_by_content_and_deletes_nothing() -> None:
    card = {1: Entry("Ann M", "1"), 2: Entry("Bob", "2"), 3: Entry("Bob", "2")}
    pda = {"a": ANN_PDA, "b": Entry("Bob", "2"), "c": Entry("Cy", "3"), "n": Entry("No", None)}
    p = run(Mode.SLOW, card=card, pda=pda)
    assert p.synced[1].uid == "a"  # by shortened name and number
    assert p.synced[2].uid == "b"
    assert p.to_pda == (CreateContact("new-3", 3, Entry("Bob", "2")),)  # the card's second Bob
    assert p.to_card == (CardPut("c", None, Entry("Cy", "3"), None),)
    assert p.skipped == ("n",)


def test_new_uids_never_clash_with_existing_contacts() -> None:
    p = run(Mode.SLOW, card={4: Entry("Zed", "4")}, pda={"new-4": Entry("Other", "5")}, synced={})
    assert p.to_pda == (CreateContact("new-4-2", 4, Entry("Zed", "4")),)


def test_refresh_from_card_overwrites_pda_differences_but_copies_one_sided_both_ways() -> None:
    p = run(
        Mode.REFRESH_FROM_CARD,
        card={1: Entry("Ann M", "5"), 2: Entry("Bo", "6")},
        pda={"u1": Entry("Ann Marie", "9"), "x": Entry("Xi", "7")},
        synced=S1,
    )
    assert set(p.to_pda) == {
        UpdateContact("u1", 1, Entry("Ann Marie", "5")),
        CreateContact("new-2", 2, Entry("Bo", "6")),
    }
    assert p.to_card == (CardPut("x", None, Entry("Xi", "7"), None),)


def test_settle_records_what_the_card_stored_and_keeps_fallbacks_for_skips() -> None:
    s2 = Synced("u2", Entry("Bob", "2"), Entry("Bob", "2"))
    p = run(pda={"u1": Entry("Ann Marie", "9"), "n": Entry("Newton", "4")}, synced={**S1, 2: s2})
    assert [type(a) for a in p.to_card] == [CardDelete, CardPut, CardPut]
    settled = settle(
        p, Applied((Removed(0), Skipped(1, "not encodable"), Stored(2, 5, "Newto", "4")))
    )
    assert settled.synced == {1: S1[1], 5: Synced("n", Entry("Newto", "4"), Entry("Newton", "4"))}
    assert settled.skipped == 1
    with pytest.raises(PlanError, match="do not answer"):
        settle(p, Applied((Removed(0),)))
    with pytest.raises(PlanError, match="over a mapped record"):
        settle(p, Applied((Removed(0), Skipped(1, "x"), Stored(2, 1, "Newto", "4"))))


def test_inconsistent_inputs_are_refused() -> None:
    with pytest.raises(PlanError, match="mapped to two records"):
        run(synced={1: S1[1], 2: S1[1]})
    with pytest.raises(PlanError, match="complete card listing"):
        run(Mode.SLOW, card={1: None})


def test_a_card_record_without_a_name_becomes_a_contact_named_by_its_number() -> None:
    nameless = Entry("", "+3312")
    first = run(Mode.SLOW, card={4: nameless})
    assert first.to_pda == (CreateContact("new-4", 4, Entry("+3312", "+3312")),)
    assert first.synced[4] == Synced("new-4", nameless, Entry("+3312", "+3312"))
    # Next time nothing moves: the card keeps no name, the contact keeps its number-name.
    again = run(Mode.FAST, card={}, pda={"new-4": Entry("+3312", "+3312")}, synced=first.synced)
    assert (again.to_pda, again.to_card) == ((), ())
    # A slow sync matches the two by content instead of copying.
    slow = run(Mode.SLOW, card={4: nameless}, pda={"u9": Entry("+3312", "+3312")})
    assert (slow.to_pda, slow.to_card) == ((), ())
    # A name given on the PDA goes to the card.
    named = run(Mode.FAST, card={}, pda={"new-4": Entry("Zoe", "+3312")}, synced=first.synced)
    assert [(a.record, a.entry) for a in named.to_card if isinstance(a, CardPut)] == [
        (4, Entry("Zoe", "+3312"))
    ]


def test_a_skipped_write_is_retried_even_when_neither_side_changed_since() -> None:
    # A refresh-from-pda (or pda-wins) write that the card skipped leaves the pair as
    # it was: the card's old record against the contact. Nothing changes after that,
    # and still the next sync must try again (only a cleared card name settles).
    waiting = {1: Synced("u1", Entry("Ann", "1"), Entry("Ann", "99"))}
    p = run(Mode.FAST, pda={"u1": Entry("Ann", "99")}, synced=waiting)
    assert [(a.record, a.entry) for a in p.to_card if isinstance(a, CardPut)] == [
        (1, Entry("Ann", "99"))
    ]
