"""Typed answers to SELECT: the GSM response (CLA ``A0``) and the FCP template (CLA ``00``).

Offsets are card.md §2 (TS 51.011 §9.2.1 for GSM, TS 102 221 §11.1.1.3 for FCP).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cardio.errors import MalformedResponse

MF_FID = 0x3F00


class FileKind(Enum):
    """Master file, dedicated file (directory) or elementary file."""

    MF = "MF"
    DF = "DF"
    EF = "EF"


class FileStructure(Enum):
    """EF structure; DFs have none."""

    TRANSPARENT = "transparent"
    LINEAR_FIXED = "linear fixed"
    CYCLIC = "cyclic"


@dataclass(frozen=True)
class FileInfo:
    """What SELECT told about a file.

    ``size`` is the EF body size (record length × records for record EFs, 0 for
    a DF). ``chv1_tries`` is the PIN's remaining tries where the answer carries
    it (GSM DF answer byte 19), else None.
    """

    fid: int
    kind: FileKind
    structure: FileStructure | None = None
    size: int = 0
    record_length: int = 0
    record_count: int = 0
    chv1_tries: int | None = None

    @property
    def is_record_ef(self) -> bool:
        """True for linear fixed and cyclic EFs (READ/UPDATE RECORD apply)."""
        return self.structure in (FileStructure.LINEAR_FIXED, FileStructure.CYCLIC)


_GSM_STRUCTURES = {
    0x00: FileStructure.TRANSPARENT,
    0x01: FileStructure.LINEAR_FIXED,
    0x03: FileStructure.CYCLIC,
}
_FCP_STRUCTURES = {
    0x01: FileStructure.TRANSPARENT,
    0x02: FileStructure.LINEAR_FIXED,
    0x06: FileStructure.CYCLIC,
}


def parse_gsm_select(data: bytes) -> FileInfo:
    """Parse a CLA ``A0`` SELECT answer (GET RESPONSE data)."""
    if len(data) < 15:
        raise MalformedResponse(f"GSM SELECT answer of {len(data)} bytes, need at least 15")
    fid = int.from_bytes(data[4:6], "big")
    file_type = data[6]
    if file_type in (0x01, 0x02):
        if len(data) < 22:
            raise MalformedResponse(f"GSM DF answer of {len(data)} bytes, need at least 22")
        chv1 = data[18]
        # b8 set: CHV1 initialised; b1-b4: tries left (TS 51.011 §9.2.1).
        tries = chv1 & 0x0F if chv1 & 0x80 else None
        kind = FileKind.MF if file_type == 0x01 else FileKind.DF
        return FileInfo(fid, kind, chv1_tries=tries)
    if file_type != 0x04:
        raise MalformedResponse(f"GSM SELECT answer has unknown file type {file_type:02X}")
    structure = _GSM_STRUCTURES.get(data[13])
    if structure is None:
        raise MalformedResponse(f"GSM SELECT answer has unknown EF structure {data[13]:02X}")
    size = int.from_bytes(data[2:4], "big")
    if structure is FileStructure.TRANSPARENT:
        return FileInfo(fid, FileKind.EF, structure, size)
    record_length = data[14]
    if record_length == 0:
        raise MalformedResponse("GSM SELECT answer has a record EF with record length 0")
    return FileInfo(fid, FileKind.EF, structure, size, record_length, size // record_length)


def parse_tlvs(body: bytes) -> dict[int, bytes]:
    """Parse a flat run of one-byte-tag BER-TLVs (short or ``81`` lengths); first wins."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(body):
        if i + 2 > len(body):
            raise MalformedResponse("truncated TLV")
        tag, length = body[i], body[i + 1]
        i += 2
        if length == 0x81:
            if i >= len(body):
                raise MalformedResponse("truncated TLV length")
            length = body[i]
            i += 1
        elif length > 0x7F:
            raise MalformedResponse(f"unsupported TLV length form {length:02X}")
        if i + length > len(body):
            raise MalformedResponse(f"TLV {tag:02X} runs past the end")
        out.setdefault(tag, body[i : i + length])
        i += length
    return out


def parse_fcp(data: bytes) -> FileInfo:
    """Parse a CLA ``00`` SELECT answer: the FCP template ``62 LL ...``."""
    if len(data) < 2 or data[0] != 0x62:
        raise MalformedResponse("SELECT answer is not an FCP template (tag 62)")
    outer = parse_tlvs(data)
    tags = parse_tlvs(outer[0x62])
    descriptor = tags.get(0x82)
    fid_bytes = tags.get(0x83)
    if descriptor is None or len(descriptor) < 2:
        raise MalformedResponse("FCP template lacks a file descriptor (tag 82)")
    if fid_bytes is None or len(fid_bytes) != 2:
        raise MalformedResponse("FCP template lacks a 2-byte file id (tag 83)")
    fid = int.from_bytes(fid_bytes, "big")
    fdb = descriptor[0]
    if fdb & 0x38 == 0x38:  # DF (ISO 7816-4 table 12)
        return FileInfo(fid, FileKind.MF if fid == MF_FID else FileKind.DF)
    structure = _FCP_STRUCTURES.get(fdb & 0x07)
    if structure is None:
        raise MalformedResponse(f"FCP descriptor byte {fdb:02X} is no EF structure we know")
    size_bytes = tags.get(0x80, b"")
    size = int.from_bytes(size_bytes, "big")
    if structure is FileStructure.TRANSPARENT:
        return FileInfo(fid, FileKind.EF, structure, size)
    if len(descriptor) < 5:
        raise MalformedResponse("FCP record-EF descriptor lacks record length and count")
    record_length = int.from_bytes(descriptor[2:4], "big")
    record_count = descriptor[4]
    if record_length == 0:
        raise MalformedResponse("FCP descriptor has a record length of 0")
    return FileInfo(
        fid,
        FileKind.EF,
        structure,
        size or record_length * record_count,
        record_length,
        record_count,
    )


__all__ = [
    "FileInfo",
    "FileKind",
    "FileStructure",
    "parse_fcp",
    "parse_gsm_select",
    "parse_tlvs",
]
