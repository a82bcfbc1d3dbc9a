"""Another terminal writes a record whose name is blank: a nameless record, never a stuck sync."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from simcard import create_image
from tests.e2e_pcsc.rig import PdaProc, Phone, Terminal, fill_image
from tests.fixtures.pcsc import PcscConnection, ServedCard


def test_blank_names_sync_as_nameless_records(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    image = tmp_path / "card.img"
    create_image(image, records=20)
    fill_image(image, {1: ("Alice", "+491111")})
    served = serve_card(image)
    pda = pda_proc("pda1")
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda1", pda)
    first = phone.sync("pda1")
    assert first["ok"] is True, first

    term = Terminal(pcsc_connect(served.reader))
    term.write(2, " ", "+492222")  # a space
    term.write(3, "\n", "+493333")  # a line break (GSM 7-bit has one)
    term.write(4, " \r\n ", "+494444")
    term.write(5, " ", "")  # nothing but a space: holds no contact at all

    fast = phone.sync("pda1")
    assert fast["ok"] is True, fast  # before: internal, "name must be a non-empty string"
    assert fast["mode"] == "fast"
    assert fast["to_pda"] == {"added": 3, "modified": 0, "deleted": 0}
    assert fast["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
    # Named by their numbers on the PDA, as docs/sync.md says of a record without a name.
    assert sorted(pda.contacts().values()) == [
        ("+492222", "+492222"),
        ("+493333", "+493333"),
        ("+494444", "+494444"),
        ("Alice", "+491111"),
    ]
    again = phone.sync("pda1")
    assert again["ok"] is True, again
    assert again["to_pda"] == again["to_card"] == fast["to_card"]
    slow = phone.sync("pda1", "--mode", "slow")
    assert slow["ok"] is True, slow
    assert slow["to_pda"] == slow["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
    assert len(pda.contacts()) == 4  # nothing duplicated
    # The card keeps what the other terminal wrote; nothing was rewritten.
    records = term.records()
    assert records[2] == (" ", "+492222")
    assert records[3] == ("\n", "+493333")
    assert records[4] == (" \r\n ", "+494444")
    assert records[5] == (" ", "")
