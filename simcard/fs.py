"""The card's file tree (spec/card.md section 2) and the SELECT answers for it.

Pure functions of the tree and a few sizes; the core asks here what a FID is,
whether it can be reached from the current DF, and what SELECT answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simcard.state import CardParams, CardState

__all__ = [
    "DF_GSM",
    "DF_TELECOM",
    "EF_ACC",
    "EF_AD",
    "EF_ADN",
    "EF_EXT1",
    "EF_ICCID",
    "EF_IMSI",
    "EF_SMSP",
    "EF_SST",
    "LINEAR_EFS",
    "MF",
    "TREE",
    "Access",
    "FileSpec",
    "Kind",
    "fcp",
    "gsm_select_response",
    "record_count",
    "record_length",
    "resolve",
]

MF = 0x3F00
EF_ICCID = 0x2FE2
DF_TELECOM = 0x7F10
EF_ADN = 0x6F3A
EF_SMSP = 0x6F42
EF_EXT1 = 0x6F4A
DF_GSM = 0x7F20
EF_IMSI = 0x6F07
EF_AD = 0x6FAD
EF_SST = 0x6F38
EF_ACC = 0x6F78

SMSP_RECORDS = 2
SMSP_LENGTH = 40  # 28 bytes of parameters + a 12-byte alpha identifier
EXT1_RECORDS = 10
EXT1_LENGTH = 13


class Kind(Enum):
    """Structure of a file."""

    MF = 1
    DF = 2
    TRANSPARENT = 3
    LINEAR = 4


class Access(Enum):
    """Access condition levels of TS 51.011 (nibble values)."""

    ALW = 0x0
    CHV1 = 0x1
    ADM = 0x4
    NEV = 0xF


@dataclass(frozen=True)
class FileSpec:
    """One file of the tree: where it hangs, what it is, who may read and update it."""

    fid: int
    parent: int | None
    kind: Kind
    read: Access = Access.ALW
    update: Access = Access.ADM

    @property
    def is_df(self) -> bool:
        """MF or DF."""
        return self.kind in (Kind.MF, Kind.DF)


TREE: dict[int, FileSpec] = {
    f.fid: f
    for f in (
        FileSpec(MF, None, Kind.MF),
        FileSpec(EF_ICCID, MF, Kind.TRANSPARENT, Access.ALW, Access.NEV),
        FileSpec(DF_TELECOM, MF, Kind.DF),
        FileSpec(EF_ADN, DF_TELECOM, Kind.LINEAR, Access.CHV1, Access.CHV1),
        FileSpec(EF_SMSP, DF_TELECOM, Kind.LINEAR, Access.CHV1, Access.CHV1),
        FileSpec(EF_EXT1, DF_TELECOM, Kind.LINEAR, Access.CHV1, Access.CHV1),
        FileSpec(DF_GSM, MF, Kind.DF),
        FileSpec(EF_IMSI, DF_GSM, Kind.TRANSPARENT, Access.CHV1, Access.ADM),
        FileSpec(EF_AD, DF_GSM, Kind.TRANSPARENT, Access.ALW, Access.ADM),
        FileSpec(EF_SST, DF_GSM, Kind.TRANSPARENT, Access.CHV1, Access.ADM),
        FileSpec(EF_ACC, DF_GSM, Kind.TRANSPARENT, Access.CHV1, Access.ADM),
    )
}

# The linear fixed EFs under DF.TELECOM: the databases the sync applet tracks.
LINEAR_EFS: tuple[int, ...] = (EF_ADN, EF_SMSP, EF_EXT1)


def record_length(fid: int, alpha_len: int) -> int:
    """Record length of a linear fixed EF."""
    return {EF_ADN: alpha_len + 14, EF_SMSP: SMSP_LENGTH, EF_EXT1: EXT1_LENGTH}[fid]


def record_count(fid: int, params: CardParams) -> int:
    """Number of records of a linear fixed EF."""
    return {EF_ADN: params.records, EF_SMSP: SMSP_RECORDS, EF_EXT1: EXT1_RECORDS}[fid]


def _children(df: int) -> list[FileSpec]:
    return [f for f in TREE.values() if f.parent == df]


def resolve(current_df: int, fid: int) -> FileSpec | None:
    """The file SELECT reaches from ``current_df``, or None.

    Reachable: the MF, the current DF, a child of it, its parent, or a sibling DF.
    """
    target = TREE.get(fid)
    if target is None:
        return None
    parent = TREE[current_df].parent
    if fid in (MF, current_df, parent) or target.parent == current_df:
        return target
    if target.is_df and parent is not None and target.parent == parent:
        return target
    return None


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
        kids = _children(fid)
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
