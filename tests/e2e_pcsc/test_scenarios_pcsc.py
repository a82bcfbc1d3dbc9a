"""Conflicts, a card moving between phones, PDAs in turn, wipes and replaced cards."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simcard import create_image
from tests.e2e_pcsc.rig import PdaProc, Phone, Terminal, fill_image, vcard
from tests.fixtures.pcsc import PcscConnection, ServedCard

NOTHING = {"added": 0, "modified": 0, "deleted": 0}


def _card(tmp_path: Path, records: dict[int, tuple[str, str]], **kw: Any) -> Path:
    image = tmp_path / f"card-{len(list(tmp_path.glob('card-*.img')))}.img"
    create_image(image, records=kw.pop("size", 40), **kw)
    fill_image(image, records)
    return image


@pytest.mark.parametrize(
    ("policy", "card_has", "pda_has"),
    [
        ("duplicate", {"Ann card", "Ann pda"}, {"Ann card", "Ann pda"}),
        ("card-wins", {"Ann card"}, {"Ann card"}),
        ("pda-wins", {"Ann pda"}, {"Ann pda"}),
    ],
)
def test_conflict_between_another_terminal_and_a_hand_edit(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
    policy: str,
    card_has: set[str],
    pda_has: set[str],
) -> None:
    served = serve_card(_card(tmp_path, {1: ("Ann", "+111"), 2: ("Ben", "+222")}))
    pda = pda_proc("pda1")
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda1", pda, policy=policy)
    assert phone.sync("pda1")["mode"] == "slow"
    (ann,) = [f for f, (name, _) in pda.contacts().items() if name == "Ann"]
    text = pda.vcf(ann).read_bytes().decode()  # CRLF as written

    term = Terminal(pcsc_connect(served.reader))
    term.write(1, "Ann card", "+111")
    term.conn.disconnect()
    pda.write_vcf(ann, text.replace("FN:Ann\r\n", "FN:Ann pda\r\n"))

    res = phone.sync("pda1")
    assert res["mode"] == "fast"
    assert res["conflicts"] == 1
    term = Terminal(pcsc_connect(served.reader))
    assert set(term.names()) == card_has | {"Ben"}
    assert set(pda.names()) == pda_has | {"Ben"}
    assert sum(term.names().values()) == len(card_has) + 1  # nothing else was copied
    term.conn.disconnect()
    settled = phone.sync("pda1")
    assert settled["to_pda"] == settled["to_card"] == NOTHING
    assert settled["conflicts"] == 0


def test_card_moves_to_a_second_phone_and_two_pdas_sync_it_in_turn(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served = serve_card(_card(tmp_path, {1: ("Alice", "+1")}))
    a, b = pda_proc("a"), pda_proc("b")
    b.write_vcf("from-b.vcf", vcard("from-b", "From B", "+2"))
    a.start()
    b.start()
    phone1 = Phone(tmp_path / "phone1", reader=served.reader)
    phone1.pair("a", a)
    phone1.pair("b", b)
    assert phone1.sync("a")["mode"] == "slow"
    assert phone1.sync("b")["mode"] == "slow"
    assert a.names() == Counter({"Alice": 1})  # a synced before From B reached the card
    assert b.names() == Counter({"Alice": 1, "From B": 1})
    assert phone1.sync("a")["to_pda"]["added"] == 1  # ...until its next sync

    # The card goes into another phone (fresh state dir, its own identity and channel copy).
    phone2 = Phone(tmp_path / "phone2", reader=served.reader)
    phone2.pair("a", a)
    phone2.pair("b", b)
    a.write_vcf("from-a.vcf", vcard("from-a", "From A", "+3"))
    ra = phone2.sync("a")
    assert ra["mode"] == "fast", ra
    assert ra["to_card"] == {"added": 1, "modified": 0, "deleted": 0}
    term = Terminal(pcsc_connect(served.reader))
    term.write(9, "Typed in", "+4")
    term.conn.disconnect()
    rb = phone2.sync("b")
    assert rb["mode"] == "fast"
    assert rb["to_pda"] == {"added": 2, "modified": 0, "deleted": 0}  # From A + Typed in
    ra = phone2.sync("a")
    assert ra["mode"] == "fast"
    assert ra["to_pda"] == {"added": 1, "modified": 0, "deleted": 0}  # Typed in only
    # Back in the first phone: still fast, nothing left to move.
    back = phone1.sync("b")
    assert back["mode"] == "fast"
    assert back["to_pda"] == back["to_card"] == NOTHING
    term = Terminal(pcsc_connect(served.reader))
    assert a.names() == b.names() == term.names()
    assert term.names() == Counter({"Alice": 1, "From A": 1, "From B": 1, "Typed in": 1})


def _synced_pair(
    serve_card: Callable[..., ServedCard],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> tuple[ServedCard, PdaProc, Phone]:
    served = serve_card(_card(tmp_path, {n: (f"P{n}", f"+{n}") for n in range(1, 6)}))
    pda = pda_proc("pda1")
    pda.write_vcf("only-pda.vcf", vcard("only-pda", "Only on PDA", "+99"))
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda1", pda)
    assert phone.sync("pda1")["mode"] == "slow"
    return served, pda, phone


EVERYONE = Counter({"P1": 1, "P2": 1, "P3": 1, "P4": 1, "P5": 1, "Only on PDA": 1})


def test_recreated_vdir_never_deletes_card_contacts(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served, pda, phone = _synced_pair(serve_card, pda_proc, tmp_path)
    shutil.rmtree(pda.contacts_dir)  # wiped while the PDA keeps serving
    pda.contacts_dir.mkdir()
    res = phone.sync("pda1")
    assert res["ok"], res["error"]
    assert res["to_card"]["deleted"] == 0
    assert Terminal(pcsc_connect(served.reader)).names() == EVERYONE
    assert pda.names() == EVERYONE


def test_deleting_every_vcf_file_never_deletes_card_contacts(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    # `rm contacts/*.vcf` keeps the vdir's dot files (store id, status table): the store looks
    # the same, and every contact it knew is gone. That is a wipe, not a person's deletions.
    served, pda, phone = _synced_pair(serve_card, pda_proc, tmp_path)
    for path in pda.contacts_dir.glob("*.vcf"):
        path.unlink()
    res = phone.sync("pda1")
    assert res["ok"], res["error"]
    assert res["to_card"]["deleted"] == 0
    assert Terminal(pcsc_connect(served.reader)).names() == EVERYONE
    assert pda.names() == EVERYONE


def test_replaced_card_never_deletes_pda_contacts(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served, pda, phone = _synced_pair(serve_card, pda_proc, tmp_path)
    assert served.stop() == 0
    served.wait_absent()
    new = serve_card(_card(tmp_path, {3: ("New card", "+7")}, iccid="8949000012345678911"))
    res = phone.sync("pda1")
    assert res["mode"] == "slow"
    assert res["to_pda"] == {"added": 1, "modified": 0, "deleted": 0}
    assert pda.names() == EVERYONE + Counter({"New card": 1})
    assert Terminal(pcsc_connect(new.reader)).names() == EVERYONE + Counter({"New card": 1})
