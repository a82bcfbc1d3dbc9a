"""No hidden full reads on the card (issue 9), counted through real PC/SC.

A 250-record card served by ``simsync card serve`` behind pcscd + vpcd, a
``simsync pda serve`` with the contacts, each sync a ``simsync sync --json``
process. Counts of APDUs (deterministic), never times. The fixed part of every
sync is 12, all on one logical channel: MANAGE CHANNEL open (the channel starts
at the MF), the ICCID (SELECT EF.ICCID, READ BINARY), EF.ADN (SELECT DF.TELECOM,
SELECT EF.ADN + GET RESPONSE), the PIN (VERIFY asking the tries left, VERIFY),
NEWSYNC (+ GET RESPONSE) + STORESYNC, and MANAGE CHANNEL close. A slow sync adds
the refresh of the phone's local copy on a second channel (open, NEWSYNC + GET
RESPONSE, STORESYNC, close) and, before its first new record, the free-record
check (NEWSYNC + GET RESPONSE). See docs/cardio.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e_pcsc.rig import PdaProc, Phone, vcard

RECORDS = 250
FIXED = 12  # channel, ICCID, EF.ADN, PIN, NEWSYNC (+ GET RESPONSE) + STORESYNC, close
REFRESH = 5  # the local copy's channel, NEWSYNC (+ GET RESPONSE) + STORESYNC, close
CHECK = 2  # NEWSYNC (+ GET RESPONSE) for the host before the first new record


def person(i: int) -> tuple[str, str]:
    return f"Person {i:03d}", f"+49170{i:07d}"


def test_a_full_card_costs_only_what_changed(
    serve_card: Callable[..., Any], pda_proc: Callable[[str], PdaProc], tmp_path: Path
) -> None:
    from simcard import create_image

    image = tmp_path / "card.img"
    create_image(image, records=RECORDS)
    served = serve_card(image)
    pda = pda_proc("pda")
    for i in range(1, RECORDS + 1):
        pda.write_vcf(f"c{i:03d}.vcf", vcard(f"c{i:03d}", *person(i)))
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda", pda)

    # The slow sync fills the empty card: at most one READ and one UPDATE per record
    # + 20. (Before issue 9: 774, a second READ of every free record before its write;
    # then 277, with a second channel for the session and the copy settled at once.)
    slow = phone.sync("pda")
    assert slow["mode"] == "slow"
    assert slow["to_card"] == {"added": RECORDS, "modified": 0, "deleted": 0}
    assert slow["apdus"] <= 2 * RECORDS + 20, slow
    # No READ at all (the host's NEWSYNC lists no record), 250 UPDATEs; the phone's own
    # writes cost nothing now (the next refresh proves them by the PDA's list).
    assert slow["apdus"] - RECORDS == FIXED + REFRESH + CHECK <= 20, slow

    # 5 contacts edited on the PDA: 3 + k sync APDUs, no refresh of the copy.
    for i in (3, 50, 100, 150, 200):
        name, _ = person(i)
        pda.write_vcf(f"c{i:03d}.vcf", vcard(f"c{i:03d}", name, f"+1555{i:07d}"))
    fast = phone.sync("pda")
    assert fast["mode"] == "fast"
    assert fast["to_card"] == {"added": 0, "modified": 5, "deleted": 0}
    assert fast["apdus"] <= 22
    assert fast["apdus"] == FIXED + 5

    idle = phone.sync("pda")
    assert idle["to_pda"] == idle["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
    assert idle["apdus"] <= 17
    assert idle["apdus"] == FIXED

    # Contacts waiting for room on the full card cost no APDU, and are counted skipped.
    for i in range(RECORDS + 1, RECORDS + 11):
        pda.write_vcf(f"c{i:03d}.vcf", vcard(f"c{i:03d}", *person(i)))
    waiting = phone.sync("pda")
    assert waiting["mode"] == "fast"
    assert waiting["skipped"] == 10
    assert waiting["apdus"] == idle["apdus"]

    # A slow sync now proves its copy by the card's change lists and reads no record:
    # not the 250 the slow sync wrote nor the 5 the fast sync wrote (before issue 9: 277
    # APDUs). The host's list names them all (3 GETCHANGES), the PDA's list, asked on
    # channel 0 (NEWSYNC + GET RESPONSE), proves nobody else wrote them since.
    again = phone.sync("pda", "--mode", "slow")
    assert again["mode"] == "slow"
    assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
    assert again["apdus"] == FIXED + REFRESH + 3 + 2, again

    # The worst slow sync: a phone without its local copy (the state file lost), every
    # record read and every record rewritten (all 250 contacts edited on the PDA).
    for i in range(1, RECORDS + 1):
        name, _ = person(i)
        pda.write_vcf(f"c{i:03d}.vcf", vcard(f"c{i:03d}", name, f"+1666{i:07d}"))
    for lost in (phone.root / "state").glob("cards.sqlite*"):
        lost.unlink()
    worst = phone.sync("pda", "--mode", "slow")
    assert worst["mode"] == "slow"
    assert worst["to_card"] == {"added": 0, "modified": RECORDS, "deleted": 0}
    assert worst["apdus"] <= 2 * RECORDS + 20, worst
    # 250 READs (a full read: the new host id's list would name every record) and
    # 250 UPDATEs; no free-record check (no new record).
    assert worst["apdus"] - 2 * RECORDS == FIXED + REFRESH <= 20, worst
