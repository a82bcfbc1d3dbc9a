"""Whole syncs: card behind pcscd + vpcd, PDA and phone as separate processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartcard import scard

from tests.e2e_pcsc.rig import PdaProc, Phone, Terminal, fill_image, vcard
from tests.fixtures.pcsc import PcscConnection

NOTHING = {"added": 0, "modified": 0, "deleted": 0}


def test_slow_then_fast_moves_only_the_edits_with_one_apdu_each(
    serve_card: Callable[..., Any],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    image = tmp_path / "card.img"
    from simcard import create_image

    create_image(image, records=60)
    fill_image(image, {n: (f"Person {n}", f"+49{n:06d}") for n in range(1, 21)})
    served = serve_card(image)
    pda = pda_proc("pda1")
    pda.write_vcf("bob.vcf", vcard("bob", "Person 2", "+49000002"))  # on both sides already
    pda.write_vcf("carol.vcf", vcard("carol", "Carol", "+4433333"))
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda1", pda)

    first = phone.sync("pda1")
    assert first["mode"] == "slow", first
    assert first["to_pda"] == {"added": 19, "modified": 0, "deleted": 0}
    assert first["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
    expected = Counter({f"Person {n}": 1 for n in range(1, 21)}) + Counter({"Carol": 1})
    term = Terminal(pcsc_connect(served.reader))
    assert term.names() == expected
    assert pda.names() == expected
    # A card another program keeps verified is sent no PIN: reset it, so that every
    # sync below verifies the PIN and the counts compare like with like.
    term.conn.disconnect(scard.SCARD_RESET_CARD)

    idle = phone.sync("pda1")
    assert idle["mode"] == "fast"
    assert idle["to_pda"] == idle["to_card"] == NOTHING
    assert idle["apdus"] < first["apdus"]

    # Another terminal: 2 modified, 1 deleted, 1 added. By hand on the PDA: 1 edited, 1 new.
    term = Terminal(pcsc_connect(served.reader))
    term.write(3, "Person 3 (work)", "+49000003")
    term.write(4, "Person 4", "+49999994")
    term.write(5, None)
    term.write(30, "Newcomer", "+4930")
    term.conn.disconnect(scard.SCARD_RESET_CARD)
    pda.write_vcf("carol.vcf", vcard("carol", "Carol", "+4477777"))
    pda.write_vcf("zoe.vcf", vcard("zoe", "Zoe", "+4912"))

    res = phone.sync("pda1")
    assert res["mode"] == "fast"
    assert res["to_pda"] == {"added": 1, "modified": 2, "deleted": 1}
    assert res["to_card"] == {"added": 1, "modified": 1, "deleted": 0}
    # One GETCHANGES page, 3 READs (not the deleted record), 2 UPDATEs, 1 free-slot READ.
    assert res["apdus"] - idle["apdus"] == 1 + 3 + 2 + 1
    contacts = pda.contacts()
    assert ("Person 3 (work)", "+49000003") in contacts.values()
    assert ("Person 4", "+49999994") in contacts.values()
    assert ("Newcomer", "+4930") in contacts.values()
    assert "Person 5" not in pda.names()
    term = Terminal(pcsc_connect(served.reader))
    card = term.records()
    assert ("Carol", "+4477777") in card.values()
    assert ("Zoe", "+4912") in card.values()
    assert term.names() == pda.names()
    term.conn.disconnect(scard.SCARD_RESET_CARD)

    again = phone.sync("pda1")
    assert again["mode"] == "fast"
    assert again["to_pda"] == again["to_card"] == NOTHING
    assert again["apdus"] == idle["apdus"]
