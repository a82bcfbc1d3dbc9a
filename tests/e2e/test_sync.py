"""Whole syncs: in-process card image, real PDA servers over TCP + mutual TLS."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cardio.codecs import AdnRecord
from pda.store import Projection
from tests.e2e.harness import World, world


def names(d: Mapping[Any, tuple[str, Any]]) -> Counter[str]:
    return Counter(v[0] for v in d.values())


async def test_first_sync_is_slow_both_ways_then_fast_and_cheap(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Alice", "+4911111")
        w.card.write(2, "Bob", "0612345679")
        pda = await w.add_pda("pda1")
        pda.add("Bob", "0612345679")  # on both sides already: must not be duplicated
        pda.add("Carol", "+4433333")
        pda.add("Dave", None)  # no number: stays on the PDA, counted as skipped

        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert first["mode"] == "slow"
        assert first["to_pda"]["added"] == 1
        assert first["to_card"]["added"] == 1
        assert first["skipped"] == 1
        assert names(w.card.records()) == Counter({"Alice": 1, "Bob": 1, "Carol": 1})
        assert names(pda.contacts()) == Counter({"Alice": 1, "Bob": 1, "Carol": 1, "Dave": 1})

        idle = await w.sync("pda1")
        assert idle["ok"], idle["error"]
        assert idle["mode"] == "fast"
        assert idle["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert idle["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        assert idle["apdus"] < first["apdus"]


async def test_fast_sync_moves_only_the_edits_with_one_apdu_each(tmp_path: Path) -> None:
    async with world(tmp_path, records=60) as w:
        for n in range(1, 21):
            w.card.write(n, f"Person {n}", f"+49{n:06d}")
        pda = await w.add_pda("pda1")
        assert (await w.sync("pda1"))["mode"] == "slow"
        baseline = await w.sync("pda1")
        assert baseline["mode"] == "fast"

        # Card side: 2 modified, 1 deleted, 1 added by another terminal.
        w.card.write(3, "Person 3 (work)", "+49000003")
        w.card.write(4, "Person 4", "+49999994")
        w.card.write(5, None)
        w.card.write(30, "Newcomer", "+4930")
        # PDA side: 1 edited, 1 new.
        uid7 = next(u for u, (n, _) in pda.contacts().items() if n == "Person 7")
        pda.store().update_projection(uid7, _proj("Person 7", "+49777777"))
        pda.add("Zoe", "+4912")

        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["mode"] == "fast"
        assert res["to_pda"] == {"added": 1, "modified": 2, "deleted": 1}
        assert res["to_card"] == {"added": 1, "modified": 1, "deleted": 0}
        # Beyond the idle fast sync: one GETCHANGES page, 3 READs (the deleted record is not
        # read), 2 UPDATEs, and one READ checking the free slot the new contact goes to.
        assert res["apdus"] - baseline["apdus"] == 1 + 3 + 2 + 1
        contacts = pda.contacts()
        assert ("Person 3 (work)", "+49000003") in contacts.values()
        assert ("Newcomer", "+4930") in contacts.values()
        assert "Person 5" not in names(contacts)
        card = w.card.records()
        assert card[7] == ("Person 7", "+49777777")
        assert ("Zoe", "+4912") in card.values()

        again = await w.sync("pda1")
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}


def _proj(name: str, number: str | None) -> Projection:
    return Projection(name, number)


@pytest.mark.parametrize(
    ("policy", "card_has", "pda_has"),
    [
        ("duplicate", {"Ann card", "Ann pda"}, {"Ann card", "Ann pda"}),
        ("card-wins", {"Ann card"}, {"Ann card"}),
        ("pda-wins", {"Ann pda"}, {"Ann pda"}),
    ],
)
async def test_conflict_policies(
    tmp_path: Path, policy: str, card_has: set[str], pda_has: set[str]
) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Ann", "+111")
        pda = await w.add_pda("pda1")
        w.conflict["pda1"] = policy
        assert (await w.sync("pda1"))["ok"]
        uid = next(iter(pda.contacts()))
        w.card.write(1, "Ann card", "+111")
        pda.store().update_projection(uid, _proj("Ann pda", "+111"))
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["conflicts"] == 1
        assert set(names(w.card.records())) == card_has
        assert set(names(pda.contacts())) == pda_has


async def test_card_moved_to_another_phone_stays_fast(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Alice", "+1")
        pda = await w.add_pda("pda1")
        assert (await w.sync("pda1"))["mode"] == "slow"
        # Same card, same PDA, a phone with a fresh state dir (and so a new identity).
        w.state_dir = tmp_path / "phone2"
        pda.dir.allow(_phone_id(w))
        w.card.write(2, "Bob", "+2")
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["mode"] == "fast"
        assert res["to_pda"]["added"] == 1


def _phone_id(w: World) -> str:
    from daemon.sync import phone_identity

    return phone_identity(w.config()).device_id


async def test_two_pdas_in_turn_each_fast_each_gets_the_others_changes(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        a = await w.add_pda("a")
        b = await w.add_pda("b")
        a.add("From A", "+1")
        assert (await w.sync("a"))["mode"] == "slow"
        assert (await w.sync("b"))["mode"] == "slow"
        assert "From A" in names(b.contacts())
        b.add("From B", "+2")
        rb = await w.sync("b")
        ra = await w.sync("a")
        assert rb["mode"] == ra["mode"] == "fast"
        assert ra["to_pda"]["added"] == 1
        assert "From B" in names(a.contacts())
        assert names(a.contacts()) == names(b.contacts()) == names(w.card.records())


async def test_wiped_vdir_never_deletes_card_contacts(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for n in range(1, 6):
            w.card.write(n, f"P{n}", f"+{n}")
        pda = await w.add_pda("pda1")
        assert (await w.sync("pda1"))["ok"]
        await pda.stop()
        import shutil

        shutil.rmtree(pda.dir.path)
        pda2 = await w.add_pda("pda1")  # same name, a brand-new directory and identity
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["mode"] == "slow"
        assert res["to_card"]["deleted"] == 0
        assert len(w.card.records()) == 5
        assert len(pda2.contacts()) == 5


async def test_replaced_card_never_deletes_pda_contacts(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Old card", "+1")
        pda = await w.add_pda("pda1")
        pda.add("Only on PDA", "+2")
        assert (await w.sync("pda1"))["ok"]
        w.image.unlink()
        from simcard import create_image

        create_image(w.image, records=40, pin="0000", iccid="8949000012345678911")
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["mode"] == "slow"
        assert res["to_pda"]["deleted"] == 0
        assert names(pda.contacts()) == {"Old card": 1, "Only on PDA": 1}
        assert names(w.card.records()) == {"Old card": 1, "Only on PDA": 1}


async def test_plain_sim_syncs_with_host_side_change_detection(tmp_path: Path) -> None:
    async with world(tmp_path, sync_applet=False) as w:
        w.card.write(1, "Alice", "+1")
        pda = await w.add_pda("pda1")
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert first["mode"] == "slow"
        # One full read of the 40 records per sync, not one for NEWSYNC and one more for
        # the slow sync's listing.
        assert 40 < first["apdus"] < 80
        second = await w.sync("pda1")
        assert second["mode"] == "fast"
        w.card.write(1, "Alice B", "+1")
        third = await w.sync("pda1")
        assert third["mode"] == "fast"
        assert third["to_pda"]["modified"] == 1
        assert names(pda.contacts()) == {"Alice B": 1}


async def test_unpaired_phone_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.add_pda("pda1", pair=False)
        res = await w.sync("pda1")
        assert not res["ok"]
        assert res["error"]["code"] == "peer_rejected"


async def test_unreachable_pda_and_unknown_pda(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        pda = await w.add_pda("pda1")
        await pda.stop()
        res = await w.sync("pda1")
        assert res["error"]["code"] == "pda_unreachable"
        res = await w.sync("nope")
        assert res["error"]["code"] == "unknown_pda"
        assert res["ok"] is False


async def test_card_full_leaves_contacts_on_the_pda_counted_as_skipped(tmp_path: Path) -> None:
    async with world(tmp_path, records=3) as w:
        w.card.write(1, "On card", "+1")
        pda = await w.add_pda("pda1")
        for i in range(4):
            pda.add(f"New {i}", f"+9{i}")
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_card"]["added"] == 2  # records 2 and 3
        assert res["skipped"] == 2
        assert len(w.card.records()) == 3
        assert len(pda.contacts()) == 5  # nothing lost on the PDA
        again = await w.sync("pda1")
        assert again["ok"], again["error"]
        assert again["skipped"] == 2  # still waiting for room, still there
        assert again["to_card"]["added"] == 0
        # Room appears: the next sync places one more.
        w.card.write(1, None)
        third = await w.sync("pda1")
        assert third["ok"], third["error"]
        assert len(w.card.records()) == 3
        assert "On card" not in names(pda.contacts())  # the card's deletion reached the PDA


async def test_a_card_record_with_a_number_but_no_name(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(2, "Named", "+1")
        w.card.write_raw(1, AdnRecord("", "+3312345").encode(18))  # common on real SIMs
        pda = await w.add_pda("pda1")
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert ("+3312345", "+3312345") in pda.contacts().values()  # vCard needs a name
        again = await w.sync("pda1")
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        assert w.card.records()[1] == ("", "+3312345")  # the card keeps no name


async def test_pauses_and_service_codes_travel_both_ways(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Voicemail", "0301234,5,#")  # BCD C: a DTMF pause
        w.card.write(2, "IMEI", "*#06#")
        pda = await w.add_pda("pda1")
        pda.write_vcf(
            "office",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:office\r\nFN:Office\r\n"
            "TEL;TYPE=WORK:+49 30 555-0 p 123\r\nEND:VCARD\r\n",
        )
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        card = w.card.records()
        assert ("Office", "+49305550,123") in card.values()
        contacts = pda.contacts()
        assert ("Voicemail", "0301234,5,#") in contacts.values()
        assert ("IMEI", "*#06#") in contacts.values()
        # In the vCard a pause is written 'p' (a comma would split the TEL value).
        vcf = next(
            p.read_text() for p in pda.dir.contacts.glob("*.vcf") if "Voicemail" in p.read_text()
        )
        assert "0301234p5p#" in vcf
        again = await w.sync("pda1")
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        # The hand-written file was not rewritten by any of this.
        assert "+49 30 555-0 p 123" in (pda.dir.contacts / "office.vcf").read_text()


async def test_numbers_over_20_digits_travel_whole_through_ext1(tmp_path: Path) -> None:
    long_number = "+" + "1234567890" * 3  # 30 digits: 20 in EF.ADN, 10 in EF.EXT1
    async with world(tmp_path) as w:
        w.card.write_long(1, "Conference", long_number)
        pda = await w.add_pda("pda1")
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert list(pda.contacts().values()) == [("Conference", long_number)]
        # A PDA edit keeps the whole number on the card: new chain, old chain freed.
        uid = next(iter(pda.contacts()))
        longer = "+49" + "9876543210" * 3 + "12"  # 34 digits
        pda.store().update_projection(uid, Projection("Conference call", longer))
        pda.add("Bridge", "+" + "5" * 45)  # a new contact needing two EXT1 records
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_card"] == {"added": 1, "modified": 1, "deleted": 0}
        assert res["skipped"] == 0
        assert w.card.full_records() == {
            1: ("Conference call", longer),
            2: ("Bridge", "+" + "5" * 45),
        }
        assert w.card.ext1_used() == 3  # the old one-record chain was released
        again = await w.sync("pda1")
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        # Deleting the contact empties the record and releases its chain.
        pda.store().delete(uid)
        gone = await w.sync("pda1")
        assert gone["to_card"]["deleted"] == 1
        assert w.card.ext1_used() == 2


async def test_when_ext1_is_full_the_long_number_waits_skipped(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        pda = await w.add_pda("pda1")
        for i in range(11):  # each needs one of the card's 10 EXT1 records
            pda.add(f"Long {i}", f"+{i:02d}" + "7" * 28)
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_card"]["added"] == 10
        assert res["skipped"] == 1
        assert len(pda.contacts()) == 11
        assert w.card.ext1_used() == 10


async def test_awkward_pda_names_never_block_a_sync(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        pda = await w.add_pda("pda1")
        pda.add("A" * 300, "+1")  # longer than the wire's 256 and the card's 18
        pda.add("Party 🎉", "+2")  # outside the BMP: no SIM coding carries it
        pda.write_vcf(
            "two-lines",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:two-lines\r\nFN:Line\\nTwo\r\nTEL:+3\r\nEND:VCARD\r\n",
        )
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert sorted(w.card.records().values()) == [
            ("A" * 18, "+1"),
            ("Line Two", "+3"),
            ("Party", "+2"),
        ]
        again = await w.sync("pda1")
        assert again["ok"], again["error"]
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert ("Party 🎉", "+2") in pda.contacts().values()  # the PDA keeps it whole


async def test_a_card_name_with_a_line_break_syncs(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Line\nTwo", "+1")  # LF is in the GSM 7-bit default alphabet
        pda = await w.add_pda("pda1")
        first = await w.sync("pda1")
        assert first["ok"], first["error"]
        assert list(pda.contacts().values()) == [("Line Two", "+1")]
        again = await w.sync("pda1")
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        assert w.card.records()[1] == ("Line\nTwo", "+1")


async def test_a_record_simsync_cannot_read_is_never_overwritten(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.card.write(1, "Alice", "+1")
        pda = await w.add_pda("pda1")
        assert (await w.sync("pda1"))["ok"]
        # Another phone writes record 1 in a form we cannot decode (BCD length 0E).
        foreign = bytes([0x41] + [0xFF] * 17) + bytes([0x0E, 0x81]) + b"\x21" * 10 + b"\xff\xff"
        w.card.write_raw(1, foreign)
        for mode in ("auto", "slow"):
            res = await w.sync("pda1", mode)
            assert res["ok"], res["error"]
            card = w.card._session()
            try:
                got = card.transmit(bytes([0xA0, 0xB2, 1, 4, 32]))[:-2]
            finally:
                card.close()
            assert got == foreign, mode
        assert ("Alice", "+1") in pda.contacts().values()  # and the PDA lost nothing


async def test_more_new_contacts_than_the_card_holds(tmp_path: Path) -> None:
    async with world(tmp_path, records=10) as w:
        pda = await w.add_pda("pda1")
        for i in range(1100):  # more than one PdaOps message may carry
            pda.write_vcf(
                f"p{i}",
                f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p{i}\r\nFN:P{i}\r\nTEL:+{i}\r\nEND:VCARD\r\n",
            )
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_card"]["added"] == 10
        assert res["skipped"] == 1090
        assert len(pda.contacts()) == 1100


async def test_a_vcard_file_that_turns_unreadable_is_not_a_deletion(tmp_path: Path) -> None:
    async with world(tmp_path, records=3) as w:
        pda = await w.add_pda("pda1")
        uid = pda.add("Contact 1", "+1")
        assert (await w.sync("pda1"))["ok"]
        path = pda.dir.contacts / f"{uid}.vcf"
        good = path.read_bytes()
        path.write_text("BEGIN:VCARD\r\nVERSION:1.0\r\nFN:Broken\r\nEND:VCARD\r\n")  # unreadable
        pda.add("Contact 2", "+2")
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_card"]["deleted"] == 0
        assert ("Contact 1", "+1") in w.card.records().values()  # still on the card
        assert "VERSION:1.0" in path.read_text()  # and the broken file was left alone
        path.write_bytes(good)  # repaired: nothing to do, nothing duplicated
        again = await w.sync("pda1")
        assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
        assert again["to_pda"] == {"added": 0, "modified": 0, "deleted": 0}
        assert sorted(w.card.records().values()) == [("Contact 1", "+1"), ("Contact 2", "+2")]
