"""The card's file tree (spec/card.md section 2): the specification, no card state.

Pure functions of the tree and a few sizes; the core asks here what a FID is and
whether it can be reached from the current DF. What SELECT answers depends on a
card's state too: ``simcard.select`` applies this specification to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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
    "children",
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


def record_count(fid: int, adn_records: int) -> int:
    """Number of records of a linear fixed EF on a card with ``adn_records`` in EF.ADN."""
    return {EF_ADN: adn_records, EF_SMSP: SMSP_RECORDS, EF_EXT1: EXT1_RECORDS}[fid]


def children(df: int) -> list[FileSpec]:
    """The files directly under DF ``df``."""
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
