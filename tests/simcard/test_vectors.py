"""SELECT answers byte-exact against spec/card.md section 2 (default card)."""

from __future__ import annotations

import pytest

from simcard import new_memory_card

from ._apdu import case4, h

# CLA A0: MF/DF = RFU(2) free(2) FID(2) type(1) RFU(5) len(1)=9, characteristics,
# #DFs, #EFs, #CHVs, RFU, CHV1 / UNBLOCK CHV1 / CHV2 / UNBLOCK CHV2 status (b8 = set, tries).
# EF = RFU(2) size(2) FID(2) 04 RFU, access(3), status, 02, structure, record length.
GSM = {
    "MF": ("3F00", "0000 0000 3F00 01 0000000000 09 13 02 01 02 00 83 8A 00 00"),
    "DF.TELECOM": ("3F00 7F10", "0000 0000 7F10 02 0000000000 09 13 00 03 02 00 83 8A 00 00"),
    "EF.ADN": ("3F00 7F10 6F3A", "0000 1F40 6F3A 04 00 11 FF 44 01 02 01 20"),
    "EF.ICCID": ("3F00 2FE2", "0000 000A 2FE2 04 00 0F FF 44 01 02 00 00"),
}

# CLA 00: FCP with tags 82, 83, 80 only, one-byte length.
FCP = {
    "DF": ("3F00 7F10", "62 08 82 02 78 21 83 02 7F10"),
    "transparent EF": ("3F00 2FE2", "62 0C 82 02 41 21 83 02 2FE2 80 02 000A"),
    "linear fixed EF": ("3F00 7F10 6F3A", "62 0F 82 05 42 21 00 20 FA 83 02 6F3A 80 02 1F40"),
}


def _select_path(path: str, cla: int, p2: int) -> bytes:
    card = new_memory_card()
    fids = path.split()
    for fid in fids[:-1]:
        resp = card.transmit(bytes((cla, 0xA4, 0, p2, 2)) + h(fid))
        assert resp[0] in (0x9F, 0x61)
    return case4(card, bytes((cla, 0xA4, 0, p2, 2)) + h(fids[-1]), gsm=cla == 0xA0)


@pytest.mark.parametrize("name", GSM)
def test_gsm_select_response(name: str) -> None:
    path, expected = GSM[name]
    got = _select_path(path, 0xA0, 0x00)
    assert got == h(expected), got.hex(" ")


@pytest.mark.parametrize("name", FCP)
def test_fcp(name: str) -> None:
    path, expected = FCP[name]
    got = _select_path(path, 0x00, 0x04)
    assert got == h(expected), got.hex(" ")


def test_ef_sizes_follow_the_card_shape() -> None:
    card = new_memory_card(records=10, alpha_len=241)  # 10 records of 255 bytes
    for fid in ("7F10",):
        assert card.transmit(b"\x00\xa4\x00\x0c\x02" + h(fid)) == h("9000")
    fcp = case4(card, h("00 A4 00 04 02 6F3A"))
    assert fcp == h("62 0F 82 05 42 21 00 FF 0A 83 02 6F3A 80 02 09F6")


def test_chv_status_bytes_count_down() -> None:
    card = new_memory_card()
    assert card.transmit(h("A0 20 00 01 08 3939393939FFFFFF")) == h("9804")
    mf = case4(card, h("A0 A4 00 00 02 3F00"), gsm=True)
    assert mf[18:20] == h("82 8A")  # 2 PIN tries left, 10 PUK tries left
