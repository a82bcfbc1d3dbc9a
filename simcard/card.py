"""The card core: one C-APDU in, one R-APDU out, state only through a ``Store``.

Pure and synchronous. ``SimCard.transmit`` never raises: every input gets a status
word from ``STATUS_WORDS``, and a command that is rejected commits nothing (the
only persistent effect of a failed command is the retry counter of a wrong
VERIFY / UNBLOCK CHV, which is what the counter is for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simcard import applet, fs, select
from simcard.errors import ImageError
from simcard.state import (
    DEFAULT_ICCID,
    MAX_PARTNER_LEN,
    PIN_TRIES,
    PUK_TRIES,
    SYNC_OBJECT_LEN,
    CardParams,
    Change,
    ChvChange,
    MemoryStore,
    RecordChange,
    Store,
    apply_changes,
    is_empty,
    new_state,
)

__all__ = ["ATR", "STATUS_WORDS", "SimCard", "new_memory_card"]

# TS 3B, T0 = TD1 present + 10 historical bytes, TD1 = T=0 and nothing more (so no TCK).
ATR = bytes.fromhex("3B8A00") + b"simsyncSIM"

# Every final status word the core can answer (61xx, 9Fxx, 6Cxx, 63Cx are families).
STATUS_WORDS = frozenset(
    {
        0x9000,
        0x6700,  # wrong length
        0x6881,  # logical channel not open
        0x6981,  # command incompatible with file structure
        0x6982,  # security status not satisfied
        0x6983,  # authentication method blocked
        0x6985,  # conditions of use not satisfied (no session, no pending response)
        0x6986,  # no current EF
        0x6A80,  # wrong data (bad TLV, wrong sync object)
        0x6A81,  # function not supported (no free logical channel)
        0x6A82,  # file not found
        0x6A83,  # record not found
        0x6A86,  # wrong P1/P2
        0x6B00,  # wrong parameter / offset / index
        0x6D00,  # unknown INS
        0x6E00,  # unknown class
        0x6F00,  # technical problem: powered off, or the image could not be written
        0x9400,  # GSM: no EF selected
        0x9402,  # GSM: out of range
        0x9404,  # GSM: file not found
        0x9408,  # GSM: file inconsistent with command
        0x9804,  # GSM: access condition not fulfilled / wrong CHV
        0x9840,  # GSM: CHV blocked
    }
)

_SYNC_INS = (0x3A, 0x3C, 0x3E)


class _Reject(Exception):  # noqa: N818 - internal control flow, never leaves this module
    """Abort the command with this status word (nothing committed yet)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass
class _Channel:
    df: int = fs.MF
    ef: int | None = None
    rec: int = 0  # record pointer for modes next/previous; 0 = none yet


@dataclass(frozen=True)
class _Cmd:
    cla: int
    ins: int
    p1: int
    p2: int
    body: bytes
    channel: int
    gsm: bool

    def sw(self, gsm: int, iso: int) -> _Reject:
        """The rejection in this command's class flavour."""
        return _Reject(gsm if self.gsm else iso)

    def le(self) -> int:
        """Le of a case-2 command (``00`` = 256)."""
        if len(self.body) != 1:
            raise _Reject(0x6700)
        return self.body[0] or 256

    def data(self) -> bytes:
        """Command data of a case-1/3/4 command; a trailing Le byte is accepted."""
        if not self.body:
            return b""
        lc = self.body[0]
        if len(self.body) not in (1 + lc, 2 + lc):
            raise _Reject(0x6700)
        return self.body[1 : 1 + lc]


@dataclass(frozen=True)
class _Pending:
    channel: int
    gsm: bool
    data: bytes


@dataclass
class _Volatile:
    channels: dict[int, _Channel] = field(default_factory=lambda: {0: _Channel()})
    sessions: dict[int, applet.Session] = field(default_factory=dict)
    pending: _Pending | None = None
    verified: bool = False


def _sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _parse_tlv(data: bytes) -> dict[int, bytes] | None:
    """Single-byte tags and lengths, each tag once; None if malformed."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            return None
        tag, length = data[i], data[i + 1]
        if length >= 0x80 or i + 2 + length > len(data) or tag in out:
            return None
        out[tag] = data[i + 2 : i + 2 + length]
        i += 2 + length
    return out


class SimCard:
    """An emulated SIM (GSM 11.11 + the TS 102 221 subset of spec/card.md + sync applet)."""

    atr: bytes = ATR

    def __init__(self, store: Store) -> None:
        self._store = store
        self._state = store.load()
        self._v = _Volatile()
        self._powered = True  # comes up as after a power-on, for in-process use
        self._closed = False

    # -- power ------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Cold start: sessions end, channels 1-3 close, MF current, PIN to verify again."""
        self._v = _Volatile()
        self._powered = not self._closed
        return self.atr

    def power_off(self) -> None:
        """Remove power: all volatile state is gone."""
        self._v = _Volatile()
        self._powered = False

    def reset(self) -> bytes:
        """Warm reset: the same effects as a power cycle."""
        return self.power_on()

    def close(self) -> None:
        """Release the store (the image file and its lock)."""
        self.power_off()
        if not self._closed:
            self._closed = True
            self._store.close()

    # -- inspection ---------------------------------------------------------------

    @property
    def params(self) -> CardParams:
        """What the card was made with."""
        return self._state.params

    def info(self) -> dict[str, object]:
        """A summary fit to print: never the PIN or PUK."""
        st = self._state
        slots = sorted((s for s in st.slots if s is not None), key=lambda s: s.seq)
        adn = st.records[fs.EF_ADN]
        return {
            "iccid": st.params.iccid,
            "records": len(adn),
            "used": sum(1 for r in adn if not is_empty(r)),
            "alpha_len": st.params.alpha_len,
            "record_length": len(adn[0]),
            "sync_applet": st.params.sync_applet,
            "table_size": len(st.slots),
            "partners": [s.partner.hex() for s in slots],
            "sync_entries": [
                {"partner": s.partner.hex(), "database": f"{s.fid:04X}"} for s in slots
            ],
            "metadata_bytes": applet.metadata_bytes(st),
            "pin_tries_left": st.pin_left,
            "puk_tries_left": st.puk_left,
        }

    # -- APDUs ------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one C-APDU with one R-APDU (data + SW1 SW2). Never raises."""
        try:
            return self._transmit(bytes(apdu))
        except _Reject as rej:
            return _sw(rej.sw)
        except ImageError:
            return _sw(0x6F00)  # the store refused the commit; nothing was applied
        except Exception:  # a bug must not take the card link down with it
            return _sw(0x6F00)

    def _transmit(self, apdu: bytes) -> bytes:
        if not self._powered:
            raise _Reject(0x6F00)
        pending, self._v.pending = self._v.pending, None
        if len(apdu) < 4:
            raise _Reject(0x6700)
        cla, ins, p1, p2 = apdu[:4]
        if cla == 0xA0:
            channel, gsm, proprietary = 0, True, False
        elif cla & 0xFC in (0x00, 0x80):
            channel, gsm, proprietary = cla & 0x03, False, bool(cla & 0x80)
        else:
            raise _Reject(0x6E00)
        cmd = _Cmd(cla, ins, p1, p2, apdu[4:], channel, gsm)
        if channel not in self._v.channels:
            raise _Reject(0x6881)
        if ins == 0xC0:
            return self._get_response(cmd, pending)
        if proprietary:
            if not self._state.params.sync_applet or ins not in _SYNC_INS:
                raise _Reject(0x6D00)
            if not self._v.verified:
                raise _Reject(0x6982)  # security before anything about the session
            if ins == 0x3A:
                return self._newsync(cmd)
            if ins == 0x3C:
                return self._getchanges(cmd)
            return self._storesync(cmd)
        handler = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xB2: self._read_record,
            0xDC: self._update_record,
            0x20: self._verify,
            0x2C: self._unblock,
            0xF2: self._status,
            0x70: self._manage_channel,
        }.get(ins)
        if handler is None or (ins == 0x70 and gsm):
            raise _Reject(0x6D00)
        return handler(cmd)

    def _commit(self, changes: list[Change]) -> None:
        self._store.commit(changes)  # may raise ImageError: then nothing was applied
        apply_changes(self._state, changes)

    def _procedure(self, cmd: _Cmd, data: bytes) -> bytes:
        """Case-4 answer: keep the data for GET RESPONSE, say how much there is."""
        self._v.pending = _Pending(cmd.channel, cmd.gsm, data)
        return bytes((0x9F if cmd.gsm else 0x61, len(data) & 0xFF))

    def _get_response(self, cmd: _Cmd, pending: _Pending | None) -> bytes:
        le = cmd.le()
        if cmd.p1 or cmd.p2:
            raise cmd.sw(0x6B00, 0x6A86)
        if pending is None or pending.channel != cmd.channel or pending.gsm != cmd.gsm:
            raise _Reject(0x6985)
        available = len(pending.data)
        if le > available:
            self._v.pending = pending  # the host re-sends with the right Le
            return _sw(0x6C00 | (available & 0xFF))
        if le < available and not cmd.gsm:
            self._v.pending = _Pending(pending.channel, False, pending.data[le:])
            return pending.data[:le] + bytes((0x61, (available - le) & 0xFF))
        return pending.data[:le] + _sw(0x9000)

    # -- files ------------------------------------------------------------------

    def _select(self, cmd: _Cmd) -> bytes:
        if cmd.gsm:
            if cmd.p1 or cmd.p2:
                raise _Reject(0x6B00)
        elif cmd.p1 != 0x00 or cmd.p2 not in (0x04, 0x0C):
            raise _Reject(0x6A86)
        data = cmd.data()
        if len(data) != 2:
            raise _Reject(0x6700)
        ch = self._v.channels[cmd.channel]
        target = fs.resolve(ch.df, int.from_bytes(data, "big"))
        if target is None:
            raise cmd.sw(0x9404, 0x6A82)
        if target.is_df:
            ch.df, ch.ef = target.fid, None
        else:
            assert target.parent is not None
            ch.df, ch.ef = target.parent, target.fid
        ch.rec = 0
        if cmd.gsm:
            return self._procedure(cmd, select.gsm_select_response(self._state, target.fid))
        if cmd.p2 == 0x0C:
            return _sw(0x9000)
        return self._procedure(cmd, select.fcp(self._state, target.fid))

    def _status(self, cmd: _Cmd) -> bytes:
        le = cmd.le()
        df = self._v.channels[cmd.channel].df
        answer = select.gsm_select_response if cmd.gsm else select.fcp
        data = answer(self._state, df)
        if le > len(data):
            return _sw(0x6C00 | len(data))
        return data[:le] + _sw(0x9000)

    def _current_ef(self, cmd: _Cmd, kind: fs.Kind, update: bool) -> fs.FileSpec:
        ef = self._v.channels[cmd.channel].ef
        if ef is None:
            raise cmd.sw(0x9400, 0x6986)
        spec = fs.TREE[ef]
        if spec.kind is not kind:
            raise cmd.sw(0x9408, 0x6981)
        access = spec.update if update else spec.read
        if access is fs.Access.ALW or (access is fs.Access.CHV1 and self._v.verified):
            return spec
        raise cmd.sw(0x9804, 0x6982)

    def _read_binary(self, cmd: _Cmd) -> bytes:
        le = cmd.le()
        if cmd.p1 & 0x80:
            raise cmd.sw(0x6B00, 0x6A86)  # short file identifiers are not offered
        spec = self._current_ef(cmd, fs.Kind.TRANSPARENT, update=False)
        content = self._state.binaries[spec.fid]
        offset = cmd.p1 << 8 | cmd.p2
        if offset >= len(content):
            raise _Reject(0x6B00)
        if le > len(content) - offset:
            return _sw(0x6C00 | (len(content) - offset))
        return content[offset : offset + le] + _sw(0x9000)

    def _record_number(self, cmd: _Cmd, count: int) -> int:
        """The record a READ/UPDATE RECORD addresses (without moving the pointer)."""
        ch = self._v.channels[cmd.channel]
        if cmd.p2 == 0x04:
            rec = cmd.p1 or ch.rec  # P1 = 0: the current record
        elif cmd.p2 == 0x02 and cmd.p1 == 0:
            rec = ch.rec + 1
        elif cmd.p2 == 0x03 and cmd.p1 == 0:
            rec = ch.rec - 1 if ch.rec else count
        else:
            raise cmd.sw(0x6B00, 0x6A86)
        if not 1 <= rec <= count:
            raise cmd.sw(0x9402, 0x6A83)
        return rec

    def _read_record(self, cmd: _Cmd) -> bytes:
        le = cmd.le()
        spec = self._current_ef(cmd, fs.Kind.LINEAR, update=False)
        records = self._state.records[spec.fid]
        rec = self._record_number(cmd, len(records))
        content = records[rec - 1]
        if le != len(content):
            return _sw(0x6C00 | len(content))
        self._v.channels[cmd.channel].rec = rec
        return content + _sw(0x9000)

    def _update_record(self, cmd: _Cmd) -> bytes:
        data = cmd.data()
        spec = self._current_ef(cmd, fs.Kind.LINEAR, update=True)
        records = self._state.records[spec.fid]
        rec = self._record_number(cmd, len(records))
        if len(data) != len(records[0]):
            raise _Reject(0x6700)
        was_empty = is_empty(records[rec - 1])
        meta = applet.write_meta(self._state, spec.fid, rec, was_empty)
        self._commit([RecordChange(spec.fid, rec, data, meta)])
        self._v.channels[cmd.channel].rec = rec
        for channel, session in self._v.sessions.items():
            if session.fid == spec.fid:
                session.note_write(rec, own=channel == cmd.channel, was_empty=was_empty)
        return _sw(0x9000)

    # -- CHV --------------------------------------------------------------------

    def _check_chv_params(self, cmd: _Cmd, gsm_p2: int) -> None:
        if cmd.gsm and (cmd.p1, cmd.p2) != (0, gsm_p2):
            raise _Reject(0x6B00)
        if not cmd.gsm and (cmd.p1, cmd.p2) != (0, 0x01):
            raise _Reject(0x6A86)

    def _tries_sw(self, cmd: _Cmd, left: int) -> bytes:
        if left == 0:
            return _sw(0x9840 if cmd.gsm else 0x6983)
        return _sw(0x9804 if cmd.gsm else 0x63C0 | left)

    def _verify(self, cmd: _Cmd) -> bytes:
        self._check_chv_params(cmd, 0x01)
        data = cmd.data()
        st = self._state
        if not data and not cmd.gsm:  # TS 102 221: VERIFY without data asks the status
            if st.pin_left == 0:
                raise _Reject(0x6983)
            return _sw(0x9000) if self._v.verified else _sw(0x63C0 | st.pin_left)
        if len(data) != 8:
            raise _Reject(0x6700)
        if st.pin_left == 0:
            raise cmd.sw(0x9840, 0x6983)
        if data == st.pin:
            if st.pin_left != PIN_TRIES:
                self._commit([ChvChange(st.pin, PIN_TRIES, st.puk_left)])
            self._v.verified = True
            return _sw(0x9000)
        self._commit([ChvChange(st.pin, st.pin_left - 1, st.puk_left)])
        self._v.verified = False
        return self._tries_sw(cmd, st.pin_left)

    def _unblock(self, cmd: _Cmd) -> bytes:
        self._check_chv_params(cmd, 0x00)
        data = cmd.data()
        if len(data) != 16:
            raise _Reject(0x6700)
        st = self._state
        if st.puk_left == 0:
            raise cmd.sw(0x9840, 0x6983)
        new_pin = data[8:]
        digits = new_pin.rstrip(b"\xff")
        if not (4 <= len(digits) <= 8 and digits.isdigit() and digits.isascii()):
            raise _Reject(0x6A80)
        if data[:8] == st.puk:
            self._commit([ChvChange(new_pin, PIN_TRIES, PUK_TRIES)])
            self._v.verified = True
            return _sw(0x9000)
        self._commit([ChvChange(st.pin, st.pin_left, st.puk_left - 1)])
        return self._tries_sw(cmd, st.puk_left)

    # -- logical channels -----------------------------------------------------------

    def _manage_channel(self, cmd: _Cmd) -> bytes:
        channels = self._v.channels
        if cmd.p1 == 0x00 and cmd.p2 == 0x00:
            le = cmd.le()
            free = [n for n in (1, 2, 3) if n not in channels]
            if not free:
                raise _Reject(0x6A81)
            if le != 1:
                return _sw(0x6C01)
            channels[free[0]] = _Channel()
            return bytes((free[0],)) + _sw(0x9000)
        if cmd.p1 == 0x80 and cmd.p2 in channels and cmd.p2 != 0:
            if cmd.data():
                raise _Reject(0x6700)
            del channels[cmd.p2]
            self._v.sessions.pop(cmd.p2, None)
            return _sw(0x9000)
        raise _Reject(0x6A86)

    # -- the sync applet ----------------------------------------------------------

    def _newsync(self, cmd: _Cmd) -> bytes:
        if cmd.p1 or cmd.p2:
            raise _Reject(0x6A86)
        tlv = _parse_tlv(cmd.data())
        if tlv is None or set(tlv) != {0xC0, 0xC1}:
            raise _Reject(0x6A80)
        partner, db = tlv[0xC0], tlv[0xC1]
        if not 1 <= len(partner) <= MAX_PARTNER_LEN or len(db) != 2:
            raise _Reject(0x6A80)
        fid = int.from_bytes(db, "big")
        if fid not in fs.LINEAR_EFS:
            raise _Reject(0x6A82)
        session = applet.new_session(self._state, partner, fid)
        self._v.sessions[cmd.channel] = session
        out = b"" if session.last is None else b"\xc2\x08" + session.last
        out += b"\xc3\x08" + session.proposed
        out += b"\xc4\x02" + len(session.changes).to_bytes(2, "big")
        return self._procedure(cmd, out)

    def _getchanges(self, cmd: _Cmd) -> bytes:
        le = cmd.le()
        session = self._v.sessions.get(cmd.channel)
        if session is None:
            raise _Reject(0x6985)
        total = len(session.changes)
        index = cmd.p1 << 8 | cmd.p2
        if index > total:
            raise _Reject(0x6B00)
        n = min(total - index, max(0, (le - 2) // 3))
        if le != 2 + 3 * n:
            return _sw(0x6C00 | (2 + 3 * n))
        out = bytearray(total.to_bytes(2, "big"))
        for kind, rec in session.changes[index : index + n]:
            out += bytes((kind,)) + rec.to_bytes(2, "big")
        return bytes(out) + _sw(0x9000)

    def _storesync(self, cmd: _Cmd) -> bytes:
        if cmd.p1 or cmd.p2:
            raise _Reject(0x6A86)
        tlv = _parse_tlv(cmd.data())
        if tlv is None or set(tlv) != {0xC3} or len(tlv[0xC3]) != SYNC_OBJECT_LEN:
            raise _Reject(0x6A80)
        session = self._v.sessions.get(cmd.channel)
        if session is None:
            raise _Reject(0x6985)
        if tlv[0xC3] != session.proposed:
            raise _Reject(0x6A80)
        self._commit(applet.store_changes(self._state, session))
        del self._v.sessions[cmd.channel]
        return _sw(0x9000)


def new_memory_card(
    *,
    records: int = 250,
    alpha_len: int = 18,
    iccid: str = DEFAULT_ICCID,
    pin: str = "0000",
    puk: str = "12345678",
    partners: int = 8,
    sync_applet: bool = True,
) -> SimCard:
    """A card whose state lives in RAM (tests, the in-process link). Raises CardParamError."""
    params = CardParams(records, alpha_len, iccid, partners, sync_applet)
    return SimCard(MemoryStore(new_state(params, pin, puk)))
