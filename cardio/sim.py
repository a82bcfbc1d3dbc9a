"""SIM file operations over a ``CardLink``: SELECT, CHV, records, binary, ICCID, channels.

A ``Sim`` speaks one class: ``00`` when the card takes it (so logical channels
exist), ``A0`` when it answers ``6E00`` (a GSM-only SIM), or the one forced by
the caller. A ``Sim`` is bound to one logical channel; ``open_channel()`` gives
another ``Sim`` on a fresh channel, or one on channel 0 where the card has none.

PINs and PUKs are never logged and never appear in an exception message.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from cardio import errors
from cardio.apdu import SW_CLA_NOT_SUPPORTED, Command, Op, Response, check, status_error
from cardio.files import MF_FID, FileInfo, parse_fcp, parse_gsm_select
from cardio.link import CardLink

log = structlog.get_logger(__name__)

CLA_GSM = 0xA0
CLA_ISO = 0x00
FID_ICCID = 0x2FE2
ICCID_LEN = 10
INS_SELECT = 0xA4
INS_VERIFY = 0x20
INS_UNBLOCK = 0x2C
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_UPDATE_RECORD = 0xDC
INS_MANAGE_CHANNEL = 0x70
MODE_ABSOLUTE = 0x04
MAX_SHORT_LE = 256


def _secret(code: str, what: str) -> bytes:
    """A PIN/PUK as 8 bytes, ASCII digits padded with FF; the message never shows it."""
    if not (isinstance(code, str) and 4 <= len(code) <= 8 and code.isascii() and code.isdigit()):
        raise errors.InvalidRequest(f"{what} must be 4 to 8 decimal digits")
    return code.encode("ascii").ljust(8, b"\xff")


def decode_iccid(raw: bytes) -> str:
    """EF.ICCID contents (BCD, nibble-swapped, F-padded) as a digit string."""
    digits: list[str] = []
    for byte in raw:
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0x0F:
                return "".join(digits)
            if nibble > 9:
                raise errors.MalformedResponse(f"ICCID holds a non-decimal nibble {nibble:X}")
            digits.append(str(nibble))
    return "".join(digits)


class Sim:
    """File operations on one logical channel of a card behind ``link``.

    ``cla`` forces the class (``0xA0`` or ``0x00``); None detects it on first use.
    """

    def __init__(self, link: CardLink, *, cla: int | None = None, channel: int = 0) -> None:
        if cla not in (None, CLA_GSM, CLA_ISO):
            raise errors.InvalidRequest(f"class must be A0 or 00, got {cla:02X}")
        if not 0 <= channel <= 3 or (channel and cla == CLA_GSM):
            raise errors.InvalidRequest(f"logical channel {channel} is not available")
        self.link = link
        self._cla = cla
        self.channel = channel
        self.current: FileInfo | None = None

    # --- class and channel --------------------------------------------------

    @property
    def cla(self) -> int | None:
        """``0xA0``, ``0x00``, or None before detection."""
        return self._cla

    @property
    def sync_cla(self) -> int:
        """CLA of the sync commands on this channel (``8X``)."""
        return 0x80 | self.channel

    def _cla_byte(self) -> int:
        if self._cla is None:
            raise errors.InvalidRequest("card class not detected yet")
        return CLA_GSM if self._cla == CLA_GSM else self.channel

    def _learn_class(self, response: Response) -> int:
        """The class, from the card's answer to the first command sent with CLA ``00``:
        ``A0`` when it refused that class (``6E00``: a SIM-only card), else ``00``."""
        self._cla = CLA_GSM if response.sw == SW_CLA_NOT_SUPPORTED else CLA_ISO
        return self._cla

    async def detect_class(self) -> int:
        """Pick the class (SELECT MF with ``00``, ``A0`` on ``6E00``); return it."""
        if self._cla is None:
            await self.select(MF_FID)
        assert self._cla is not None
        return self._cla

    async def open_channel(self) -> Sim:
        """A ``Sim`` on a newly opened logical channel, or on channel 0 if the card has none.

        Opened from the basic channel, the new channel's current DF is the MF
        (ISO/IEC 7816-4 MANAGE CHANNEL, TS 102 221 section 11.1.17). With the class not
        known yet, MANAGE CHANNEL itself tells it: a SIM-only card answers ``6E00`` to
        CLA ``00`` (card.md section 2).
        """
        if self._cla == CLA_GSM:
            return Sim(self.link, cla=CLA_GSM)
        response = await self.link.transmit(Command(CLA_ISO, INS_MANAGE_CHANNEL, 0, 0, le=1))
        if self._cla is None and self._learn_class(response) == CLA_GSM:
            return Sim(self.link, cla=CLA_GSM)
        if not response.ok:
            # 6881 (no channels), 6A81, 6D00: the card offers none; share channel 0.
            log.info("logical channel unavailable, using channel 0", sw=f"{response.sw:04X}")
            return Sim(self.link, cla=CLA_ISO)
        if len(response.data) != 1 or not 1 <= response.data[0] <= 3:
            raise errors.MalformedResponse("MANAGE CHANNEL open answered no channel 1-3")
        return Sim(self.link, cla=CLA_ISO, channel=response.data[0])

    async def close_channel(self) -> None:
        """Close this ``Sim``'s logical channel (nothing to do on channel 0)."""
        if self.channel == 0:
            return
        check(
            await self.link.transmit(Command(CLA_ISO, INS_MANAGE_CHANNEL, 0x80, self.channel)),
            Op.CHANNEL,
        )
        self.current = None

    # --- selection ----------------------------------------------------------

    async def select(self, fid: int) -> FileInfo:
        """SELECT one file by FID (MF, a child, the parent or a sibling DF)."""
        if not 0 <= fid <= 0xFFFF:
            raise errors.InvalidRequest(f"file id must be 2 bytes, got {fid:#x}")
        fid_bytes = fid.to_bytes(2, "big")
        if self._cla is None:
            response = await self.link.transmit(Command(CLA_ISO, INS_SELECT, 0, 0x04, fid_bytes))
            if self._learn_class(response) == CLA_ISO:
                return self._selected(response)
        if self._cla == CLA_GSM:
            command = Command(CLA_GSM, INS_SELECT, 0, 0, fid_bytes)
        else:
            command = Command(self._cla_byte(), INS_SELECT, 0, 0x04, fid_bytes)
        return self._selected(await self.link.transmit(command))

    async def select_quiet(self, path: Sequence[int]) -> None:
        """SELECT each FID of ``path`` asking for no answer data (P2 ``0C``), when it can.

        Saves the GET RESPONSE round trip of every SELECT where the caller already
        knows the file (e.g. re-selecting EF.ADN on a fresh logical channel). A GSM
        (``A0``) card has no such option: it gets an ordinary SELECT.
        """
        if not path:
            raise errors.InvalidRequest("empty path")
        if self._cla is None and path[0] == MF_FID:
            # The class from this SELECT's status word alone: no answer data to fetch.
            command = Command(CLA_ISO, INS_SELECT, 0, 0x0C, MF_FID.to_bytes(2, "big"))
            response = await self.link.transmit(command)
            if self._learn_class(response) == CLA_GSM:
                await self.select(MF_FID)
            else:
                check(response, Op.SELECT)
                self.current = None
            path = path[1:]
        await self.detect_class()
        for fid in path:
            if not 0 <= fid <= 0xFFFF:
                raise errors.InvalidRequest(f"file id must be 2 bytes, got {fid:#x}")
            if self._cla == CLA_GSM:
                await self.select(fid)
                continue
            command = Command(self._cla_byte(), INS_SELECT, 0, 0x0C, fid.to_bytes(2, "big"))
            check(await self.link.transmit(command), Op.SELECT)
            self.current = None

    def _selected(self, response: Response) -> FileInfo:
        check(response, Op.SELECT)
        info = parse_gsm_select(response.data) if self._cla == CLA_GSM else parse_fcp(response.data)
        self.current = info
        return info

    async def select_path(self, path: Sequence[int]) -> FileInfo:
        """SELECT each FID of ``path`` in turn (e.g. ``[0x3F00, 0x7F10, 0x6F3A]``)."""
        if not path:
            raise errors.InvalidRequest("empty path")
        info: FileInfo | None = None
        for fid in path:
            info = await self.select(fid)
        assert info is not None
        return info

    # --- CHV ----------------------------------------------------------------

    async def verify_pin(self, pin: str) -> None:
        """VERIFY CHV1; ``PinRejected.tries_left`` tells what is left, ``CardBlocked`` if none.

        A GSM card's ``9804`` carries no count: it is then read from the MF's SELECT
        answer, which leaves the MF selected.
        """
        data = _secret(pin, "PIN")
        await self.detect_class()
        response = await self.link.transmit(Command(self._cla_byte(), INS_VERIFY, 0, 1, data))
        if response.ok:
            log.info("pin verified", channel=self.channel)
            return
        error = status_error(response.sw, Op.VERIFY)
        if isinstance(error, errors.PinRejected) and error.tries_left is None:
            # GSM says only "wrong"; the DF answer knows the count.
            error = errors.PinRejected(error.sw, error.command, await self.pin_tries_left())
        tries = getattr(error, "tries_left", 0)
        log.warning("pin rejected", sw=f"{response.sw:04X}", tries_left=tries)
        raise error

    async def unblock(self, puk: str, new_pin: str) -> None:
        """UNBLOCK CHV1 with the PUK, setting ``new_pin``."""
        data = _secret(puk, "PUK") + _secret(new_pin, "new PIN")
        await self.detect_class()
        # GSM codes CHV1 as P2 00 (TS 51.011 §9.2.6); ISO as key reference 01.
        p2 = 0x00 if self._cla == CLA_GSM else 0x01
        response = await self.link.transmit(Command(self._cla_byte(), INS_UNBLOCK, 0, p2, data))
        if not response.ok:
            log.warning("unblock rejected", sw=f"{response.sw:04X}")
            raise status_error(response.sw, Op.UNBLOCK)
        log.info("pin unblocked", channel=self.channel)

    async def pin_tries_left(self) -> int | None:
        """Remaining PIN tries, or None where the card does not tell.

        CLA ``00``: VERIFY without data (``63Cx``; ``9000`` means already verified
        in this session, and the count is then not reported: None). CLA ``A0``:
        byte 19 of the MF's SELECT answer; this leaves the MF selected.
        """
        await self.detect_class()
        if self._cla == CLA_GSM:
            return (await self.select(MF_FID)).chv1_tries
        response = await self.link.transmit(Command(self._cla_byte(), INS_VERIFY, 0, 1))
        if response.sw & 0xFFF0 == 0x63C0:
            return response.sw & 0x0F
        if response.sw in (0x6983, 0x9840):
            return 0
        if response.ok:
            return None
        raise status_error(response.sw, Op.VERIFY)

    # --- reading and writing ------------------------------------------------

    async def read_record(self, number: int) -> bytes:
        """READ RECORD ``number`` (1-based, absolute mode) of the selected EF."""
        _check_record_number(number)
        await self.detect_class()
        le = self.current.record_length if self.current and self.current.is_record_ef else 256
        command = Command(self._cla_byte(), INS_READ_RECORD, number, MODE_ABSOLUTE, le=le)
        return check(await self.link.transmit(command), Op.READ).data

    async def update_record(self, number: int, data: bytes) -> None:
        """UPDATE RECORD ``number`` (absolute mode) of the selected EF with ``data``."""
        _check_record_number(number)
        if not 1 <= len(data) <= 255:
            raise errors.InvalidRequest(f"record data of {len(data)} bytes (1..255 allowed)")
        if self.current and self.current.is_record_ef and len(data) != self.current.record_length:
            raise errors.InvalidRequest(
                f"record data of {len(data)} bytes, EF {self.current.fid:04X} has "
                f"{self.current.record_length}-byte records"
            )
        await self.detect_class()
        command = Command(self._cla_byte(), INS_UPDATE_RECORD, number, MODE_ABSOLUTE, bytes(data))
        check(await self.link.transmit(command), Op.UPDATE)

    async def read_binary(self, offset: int, length: int) -> bytes:
        """READ BINARY ``length`` bytes at ``offset`` of the selected EF (chunked by 256)."""
        if offset < 0 or length < 0 or offset + length > 0x7FFF:
            raise errors.InvalidRequest(f"READ BINARY offset {offset} length {length} invalid")
        await self.detect_class()
        out = b""
        while len(out) < length:
            chunk = min(MAX_SHORT_LE, length - len(out))
            at = offset + len(out)
            command = Command(self._cla_byte(), INS_READ_BINARY, at >> 8, at & 0xFF, le=chunk)
            data = check(await self.link.transmit(command), Op.READ).data
            if not data:
                raise errors.MalformedResponse(f"READ BINARY at {at} returned no data")
            out += data
        return out[:length]

    async def iccid(self, *, at_mf: bool = False) -> str:
        """The card's ICCID (EF 2FE2 under the MF) as a digit string; no PIN needed.

        EF.ICCID is 10 bytes (card.md section 2), so neither SELECT asks for an answer.
        ``at_mf``: the MF is known to be current (a channel just opened from channel 0).
        """
        await self.select_quiet([FID_ICCID] if at_mf else [MF_FID, FID_ICCID])
        return decode_iccid(await self.read_binary(0, ICCID_LEN))


def _check_record_number(number: int) -> None:
    if not 1 <= number <= 254:
        raise errors.InvalidRequest(f"record number {number} outside 1..254")


__all__ = ["CLA_GSM", "CLA_ISO", "Sim", "decode_iccid"]
