"""No hidden full reads on the card (issue 9), counted through real PC/SC.

A 250-record card served by ``simsync card serve`` behind pcscd + vpcd, a
``simsync pda serve`` with the contacts, each sync a ``simsync sync --json``
process. Counts of APDUs (deterministic), never times. The fixed part of every
sync is 15: the ICCID (SELECT MF, SELECT EF.ICCID, READ BINARY), EF.ADN (SELECT
DF.TELECOM, SELECT EF.ADN + GET RESPONSE), the PIN (VERIFY asking the tries left,
VERIFY), the session's logical channel (MANAGE CHANNEL open, 2 SELECTs, close)
and NEWSYNC (+ GET RESPONSE) + STORESYNC. See docs/cardio.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e_pcsc.rig import PdaProc, Phone, vcard

RECORDS = 250
FIXED = 15  # prologue, channel, NEWSYNC (+ GET RESPONSE) + STORESYNC


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
    # + 20. (Before issue 9: 774, a second READ of every free record before its write.)
    slow = phone.sync("pda")
    assert slow["mode"] == "slow"
    assert slow["to_card"] == {"added": RECORDS, "modified": 0, "deleted": 0}
    assert slow["apdus"] <= 2 * RECORDS + 20, slow
    # No READ at all (the host's NEWSYNC lists no record), 250 UPDATEs, and moving the
    # phone's own local-copy anchor over them costs 5 (two NEWSYNCs + STORESYNC).
    assert slow["apdus"] == RECORDS + 27, slow

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
    # not the 250 the slow sync wrote (settled then; before issue 9: 277 APDUs), nor
    # the 5 the fast sync wrote (the PDA's list, asked on a spare channel, proves them:
    # MANAGE CHANNEL, NEWSYNC + GET RESPONSE, close). The refresh's channel costs 2,
    # the host's NEWSYNC + GET RESPONSE + GETCHANGES + STORESYNC 4.
    again = phone.sync("pda", "--mode", "slow")
    assert again["mode"] == "slow"
    assert again["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
    assert again["apdus"] == FIXED + 2 + 4 + 4, again
