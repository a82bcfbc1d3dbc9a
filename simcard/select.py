"""What SELECT and STATUS answer: the file-system specification applied to one card's state.

``simcard.fs`` is the specification and knows no card; this module is the
runtime side (sizes, record counts and retry counters come from ``CardState``).
"""

from __future__ import annotations

from simcard.fs import TREE, FileSpec, Kind, children
from simcard.state import CardState

__all__ = ["fcp", "gsm_select_response"]


def _size(state: CardState, f: FileSpec) -> int:
    if f.kind is Kind.LINEAR:
        recs = state.records[f.fid]
        return len(recs) * len(recs[0])
    return len(state.binaries[f.fid])


def _record_len(state: CardState, f: FileSpec) -> int:
    return len(state.records[f.fid][0]) if f.kind is Kind.LINEAR else 0


def gsm_select_response(state: CardState, fid: int) -> bytes:
    """The GET RESPONSE data after a CLA ``A0`` SELECT (TS 51.011 9.2.1)."""
    f = TREE[fid]
    if f.is_df:
        kids = children(fid)
        n_df = sum(1 for k in kids if k.is_df)
        chv = 0x80 | state.pin_left  # b8: code initialised, b1-b4: tries left
        unblock = 0x80 | state.puk_left
        return (
            bytes(2)  # RFU
            + bytes(2)  # free memory: nothing allocatable on this card
            + fid.to_bytes(2, "big")
            + bytes((0x01 if f.kind is Kind.MF else 0x02,))
            + bytes(5)  # RFU
            + bytes((9,))  # length of the GSM-specific data that follows
            + bytes((0x13,))  # characteristics: clock stop allowed, CHV1 enabled
            + bytes((n_df, len(kids) - n_df, 2, 0))  # DFs, EFs, CHVs (CHV1 + UNBLOCK), RFU
            + bytes((chv, unblock, 0x00, 0x00))  # CHV2 and its unblock: not initialised
        )
    structure = 0x01 if f.kind is Kind.LINEAR else 0x00
    return (
        bytes(2)
        + _size(state, f).to_bytes(2, "big")
        + fid.to_bytes(2, "big")
        + bytes((0x04, 0x00))  # type EF, RFU
        + bytes((f.read.value << 4 | f.update.value, 0xFF, 0x44))  # access conditions
        + bytes((0x01, 0x02, structure, _record_len(state, f)))  # not invalidated, ...
    )


def fcp(state: CardState, fid: int) -> bytes:
    """The FCP template after a CLA ``00`` SELECT with P2 ``04`` (TS 102 221 11.1.1.3)."""
    f = TREE[fid]
    fid_tlv = b"\x83\x02" + fid.to_bytes(2, "big")
    if f.is_df:
        body = b"\x82\x02\x78\x21" + fid_tlv
    else:
        size_tlv = b"\x80\x02" + _size(state, f).to_bytes(2, "big")
        if f.kind is Kind.LINEAR:
            recs = state.records[fid]
            descriptor = bytes((0x82, 0x05, 0x42, 0x21, 0x00, len(recs[0]), len(recs)))
        else:
            descriptor = b"\x82\x02\x41\x21"
        body = descriptor + fid_tlv + size_tlv
    return bytes((0x62, len(body))) + body
