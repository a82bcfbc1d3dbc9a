"""The serial link's ARQ session: reliable, ordered frames over a lossy packet line (sans-IO).

Go-back-N with cumulative acks: each DATA packet carries a 16-bit sequence number
and a fragment of a frame (``END`` marks the last one; a frame of 0 bytes is one
empty ``END`` fragment). The receiver takes only the next expected packet, acks
cumulatively, drops duplicates (re-acking them, since its ack may have been lost)
and sends one ``NAK`` per gap so the sender goes back at once instead of at its
time-out. Time-outs follow RFC 6298 (smoothed RTT, Karn's rule, doubling back-off),
floored by the line time of a full window at the configured baud rate.

Liveness: a side that has sent nothing for ``keepalive`` seconds sends an ACK, and
every retransmission time-out adds one (a short packet survives noise that keeps
killing long ones); a
side that hears nothing valid from its peer for ``dead_after`` seconds ends the
session with ``TransportClosed`` ("line dropped"). Closing sends a sequenced FIN
after all data, so frames sent before ``close`` still arrive; the FIN is resent at
every time-out until it is acked, the peer resets, or the peer has been silent for
``dead_after`` (a noisy line costs retries, never the peer's clean end). A session
that ended without a goodbye (hang-up, silence, replaced) answers its peer's
further DATA and ACKs with ``RST``, so a peer that missed the end learns of it at
once instead of after ``dead_after`` of silence.

The core never reads a clock: every call takes ``now`` (seconds, monotonic), and
``next_deadline`` tells the driver when to call :meth:`ArqSession.tick`.
Memory is bounded: at most ``SEND_LIMIT`` bytes plus one frame wait to be sent, and
received data beyond ``max_frame + RECV_SLACK`` unread bytes is not acked (the peer
sends it again later), so neither a hostile peer nor a slow reader grows memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from .errors import FramingError, TransportClosed, TransportError
from .serial_frames import Flag, Kind, Packet

__all__ = ["MTU", "RECV_SLACK", "SEND_LIMIT", "VERSION", "WINDOW", "ArqSession", "State"]

#: Default payload bytes per DATA packet (the driver picks per baud rate).
MTU = 1024
#: Default DATA packets in flight (unacked) at most.
WINDOW = 8
#: Bytes ``send`` may queue beyond the frame being added (back-pressure above this).
SEND_LIMIT = 64 * 1024
#: Unread received bytes tolerated beyond one whole frame.
RECV_SLACK = 64 * 1024
#: Protocol version carried in SYN and SYNACK.
VERSION = 1
_MOD = 1 << 16
_HALF = 1 << 15


class State(Enum):
    """Where a session stands (one table of transitions: the ``_on_*`` methods)."""

    SYN_SENT = "syn-sent"  # client waiting for SYNACK
    OPEN = "open"
    CLOSING = "closing"  # our FIN is queued or in flight
    DONE = "done"  # over: closed cleanly, reset, or failed


@dataclass
class _Out:
    seq: int
    flags: Flag
    payload: bytes
    sent_at: float | None = None  # first transmission, for RTT samples
    resent: bool = False
    round: int = 0  # the go-back round of its latest transmission


class ArqSession:
    """One session's ARQ state; the driver feeds it packets and time and sends what it asks."""

    def __init__(
        self,
        sid: int,
        *,
        client: bool,
        now: float,
        peer: str,
        max_frame: int,
        min_rto: float,
        initial_rto: float,
        dead_after: float,
        mtu: int = MTU,
        window: int = WINDOW,
    ) -> None:
        self.sid = sid
        self.peer = peer
        self.max_frame = max_frame
        self.state = State.SYN_SENT if client else State.OPEN
        self._client = client
        self._dead_after = dead_after
        self._keepalive = dead_after / 4
        self._min_rto = min_rto
        self.mtu = mtu
        self.window = window
        # Line noise is no congestion: back off, but never past a few windows' time.
        self._max_rto = min(max(2 * initial_rto, 1.0), dead_after / 2)
        self._rto = min(max(min_rto, initial_rto), self._max_rto)
        self._srtt: float | None = None
        self._rttvar = 0.0
        # send side
        self._queue: deque[tuple[Flag, bytes]] = deque()  # fragments without a seq yet
        self._flight: deque[_Out] = deque()  # seqs base.. (sent or about to be)
        self._next_send = 0  # index into _flight of the next packet to (re)transmit
        self._next_seq = 0
        self._queued_bytes = 0
        self._rto_at: float | None = None
        self._round = 0
        # receive side
        self._expected = 0
        self._partial = bytearray()
        self._frames: deque[bytes] = deque()
        self._frames_bytes = 0
        self._ack_due = False
        self._probe_due = False  # a bare ACK after a time-out, even with DATA going out
        self._nak_sent_for: int | None = None
        self._gap_last: int | None = None  # distance to the last packet past a gap
        # control packets (SYN, SYNACK, RST) waiting to go out
        self._control: deque[Packet] = deque()
        self._last_heard = now
        self._last_sent = now
        self._syn_at = now if client else None
        self._started = now
        #: Why the session ended for the application (``None`` while it runs).
        self.error: TransportError | None = None
        self._local_closed = False
        self._reset_peer = False  # ended without a goodbye: answer the peer with RST
        #: Statistics for benchmarks and tests.
        self.stats = {"sent": 0, "resent": 0, "received": 0, "duplicates": 0, "naks": 0}
        if not client:
            self._control.append(self._packet(Kind.SYNACK, payload=bytes([VERSION])))

    # ----------------------------------------------------------------- application side

    @property
    def send_buffered(self) -> int:
        """Payload bytes queued or unacked."""
        return self._queued_bytes

    @property
    def finished(self) -> bool:
        """True once nothing more will be sent or received for this session."""
        return self.state is State.DONE and not self._control and not self._ack_due

    def can_send(self) -> bool:
        """True when a new frame may be queued now (open, and the send buffer has room)."""
        return self.state is State.OPEN and self._queued_bytes <= SEND_LIMIT

    def send_frame(self, frame: bytes) -> None:
        """Queue one whole frame (its fragments go out in order, never interleaved)."""
        if len(frame) > self.max_frame:
            raise FramingError(
                f"frame of {len(frame)} bytes exceeds the maximum of {self.max_frame}"
            )
        if self.state is not State.OPEN:
            raise self.error or TransportClosed(f"link to {self.peer} is closed")
        view = memoryview(frame)
        mtu = self.mtu
        for start in range(0, max(len(frame), 1), mtu):
            last = start + mtu >= len(frame)
            self._queue.append((Flag.END if last else Flag.NONE, bytes(view[start : start + mtu])))
        self._queued_bytes += len(frame)

    def next_frame(self) -> bytes | None:
        """The next received frame, if one is complete."""
        if self._local_closed or not self._frames:
            return None
        frame = self._frames.popleft()
        self._frames_bytes -= len(frame)
        return frame

    def recv_error(self) -> TransportError | None:
        """What ``recv`` raises when no frame is waiting (``None``: wait for more)."""
        if self._local_closed:
            return TransportClosed(f"link to {self.peer} is closed")
        return self.error

    def close(self, now: float) -> None:
        """Close: queue a FIN behind the data; ``recv`` on this side ends at once."""
        self._local_closed = True
        if self.state is State.OPEN:
            self._queue.append((Flag.FIN, b""))
            self.state = State.CLOSING
        elif self.state is State.SYN_SENT:
            self._end(TransportClosed(f"link to {self.peer} is closed"))

    def fail(self, error: TransportError) -> None:
        """End the session from outside (line hung up, replaced by a new session)."""
        self._control.clear()
        self._ack_due = False
        self._reset_peer = True
        self._end(error)

    # ------------------------------------------------------------------------ wire side

    def receive(self, packet: Packet, now: float) -> None:
        """Take one packet addressed to this session (``packet.sid == self.sid``)."""
        if self.state is State.DONE:
            if packet.kind is Kind.DATA and packet.flags & Flag.FIN:
                self._ack_due = True  # our ack of its FIN was lost; say it again
            elif (
                self._reset_peer
                and packet.kind in (Kind.DATA, Kind.ACK)
                and not any(p.kind is Kind.RST for p in self._control)
            ):
                self._control.append(self._packet(Kind.RST))  # it missed our end
            return
        self._last_heard = now
        self.stats["received"] += 1
        if packet.kind is Kind.RST:
            self._end(TransportClosed(f"{self.peer} reset the link (it lost the session)"))
        elif packet.kind is Kind.SYN:
            if not self._client:  # our SYNACK was lost: the client asks again
                self._control.append(self._packet(Kind.SYNACK, payload=bytes([VERSION])))
        elif packet.kind is Kind.SYNACK:
            if self.state is State.SYN_SENT:
                self.state = State.OPEN
        elif packet.kind in (Kind.ACK, Kind.DATA):
            if self.state is State.SYN_SENT:  # the SYNACK was lost, the server already talks
                self.state = State.OPEN
            self._on_ack(packet, now)
            if packet.kind is Kind.DATA:
                self._on_data(packet)

    def _on_ack(self, packet: Packet, now: float) -> None:
        acked = (packet.ack - self._base()) % _MOD
        if 0 < acked <= len(self._flight):  # every packet in flight went out at least once
            for _ in range(acked):
                out = self._flight.popleft()
                self._queued_bytes -= len(out.payload)
                if out.sent_at is not None and not out.resent:
                    self._sample_rtt(now - out.sent_at)
                if out.flags & Flag.FIN:
                    self._end(None)
            self._next_send = max(0, self._next_send - acked)
            self._rto_at = now + self._rto if self._flight else None
        if (
            packet.kind is Kind.ACK
            and packet.flags & Flag.NAK
            and self._flight
            and packet.ack == self._flight[0].seq
            and self._flight[0].round == self._round  # not yet resent since the last go-back
            and self._next_send > 0
        ):
            self._go_back(now)

    def _on_data(self, packet: Packet) -> None:
        ahead = (packet.seq - self._expected) % _MOD
        if ahead != 0:
            if ahead < _HALF:  # a gap: something before it was lost
                # One NAK per gap and per round of the sender: a packet nearer than the
                # last one past the gap means the sender went back, and lost it again.
                again = self._gap_last is not None and ahead <= self._gap_last
                self._gap_last = ahead
                if self._nak_sent_for != self._expected or again:
                    self._nak_sent_for = self._expected
                    self._control.append(self._packet(Kind.ACK, Flag.NAK, ack=self._expected))
                    self.stats["naks"] += 1
            else:
                self.stats["duplicates"] += 1
                self._ack_due = True
            return
        if packet.flags & Flag.FIN:
            self._expected = (self._expected + 1) % _MOD
            self._ack_due = True
            if self.state is State.OPEN:
                self._queue.clear()
                self._flight.clear()
                self._queued_bytes = 0
                self._end(TransportClosed(f"{self.peer} closed the link"))
            return  # CLOSING: both closed at once; ours still waits for its ack
        if self._local_closed:
            pass  # nobody will read it: take it (so the peer's FIN can follow) and drop it
        elif self._frames_bytes + len(self._partial) + len(packet.payload) > (
            self.max_frame + RECV_SLACK
        ):
            return  # the reader is behind: no ack, the peer sends it again later
        elif len(self._partial) + len(packet.payload) > self.max_frame:
            self._control.append(self._packet(Kind.RST))
            self._end(
                FramingError(f"{self.peer} sent a frame over the maximum of {self.max_frame}")
            )
            return
        else:
            self._partial += packet.payload
            if packet.flags & Flag.END:
                frame = bytes(self._partial)
                self._partial.clear()
                self._frames.append(frame)
                self._frames_bytes += len(frame)
        self._expected = (self._expected + 1) % _MOD
        self._nak_sent_for = None
        self._gap_last = None
        self._ack_due = True

    # ----------------------------------------------------------------------- time side

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called (``None``: only when something happens)."""
        if self.state is State.DONE:
            return None
        times = [self._last_heard + self._dead_after]
        if self.state is not State.SYN_SENT:
            times.append(self._last_sent + self._keepalive)
        if self._rto_at is not None:
            times.append(self._rto_at)
        if self._syn_at is not None and self.state is State.SYN_SENT:
            times.append(self._syn_at)
        return min(times)

    def tick(self, now: float) -> None:
        """Run the timers that are due."""
        if self.state is State.DONE:
            return
        if now - self._last_heard >= self._dead_after:
            if self.state is State.SYN_SENT:
                self._end(TransportClosed("no simsync peer answered on the line"))
            elif self.state is State.CLOSING:
                self._end(None)  # nobody left to say goodbye to
            else:
                self._reset_peer = True
                self._end(
                    TransportClosed(
                        f"{self.peer} went silent for {self._dead_after:g} s "
                        "(line dropped or peer gone)"
                    )
                )
            return
        if self._rto_at is not None and now >= self._rto_at:
            self._rto = min(self._rto * 2, self._max_rto)
            self._go_back(now)
            # Also a bare ACK: on a noisy line a short packet gets through where long
            # DATA packets keep failing, and it tells the peer we are still here.
            self._probe_due = True

    def packets_to_send(self, now: float, limit: int) -> list[Packet]:
        """What to put on the line now (at most *limit* DATA packets), in order."""
        out: list[Packet] = []
        if self.state is State.SYN_SENT:
            assert self._syn_at is not None
            if now >= self._syn_at:
                out.append(self._packet(Kind.SYN, payload=bytes([VERSION])))
                self._syn_at = now + self._rto
        while self._control:
            out.append(self._control.popleft())
        if self.state in (State.OPEN, State.CLOSING):
            sent = 0
            while sent < limit:
                if self._next_send >= len(self._flight):
                    if not self._queue or len(self._flight) >= self.window:
                        break
                    flags, payload = self._queue.popleft()
                    self._flight.append(_Out(self._next_seq, flags, payload))
                    self._next_seq = (self._next_seq + 1) % _MOD
                o = self._flight[self._next_send]
                o.round = self._round
                if o.sent_at is None:
                    o.sent_at = now
                else:
                    o.resent = True
                    self.stats["resent"] += 1
                self.stats["sent"] += 1
                out.append(self._packet(Kind.DATA, o.flags, seq=o.seq, payload=o.payload, ack=None))
                self._next_send += 1
                sent += 1
                if self._rto_at is None:
                    self._rto_at = now + self._rto
            if sent:
                self._ack_due = False  # the DATA packets carry the ack
        if self._ack_due or self._probe_due:
            out.append(self._packet(Kind.ACK))
            self._ack_due = self._probe_due = False
        idle = now - self._last_sent >= self._keepalive
        if not out and idle and self.state in (State.OPEN, State.CLOSING):
            out.append(self._packet(Kind.ACK))
        if out:
            self._last_sent = now
        return out

    # ------------------------------------------------------------------------- helpers

    def _base(self) -> int:
        return self._flight[0].seq if self._flight else self._next_seq

    def _packet(
        self,
        kind: Kind,
        flags: Flag = Flag.NONE,
        *,
        seq: int = 0,
        ack: int | None = None,
        payload: bytes = b"",
    ) -> Packet:
        return Packet(kind, self.sid, seq, self._expected if ack is None else ack, flags, payload)

    def _go_back(self, now: float) -> None:
        self._round += 1
        self._next_send = 0
        self._rto_at = now + self._rto

    def _sample_rtt(self, rtt: float) -> None:
        # RFC 6298, with the floor at the window's line time instead of 1 s.
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        self._rto = min(max(self._min_rto, self._srtt + 4 * self._rttvar), self._max_rto)

    def _end(self, error: TransportError | None) -> None:
        if self.state is State.DONE:
            return
        self.state = State.DONE
        self._rto_at = None
        self._probe_due = False
        if self.error is None:
            self.error = error or TransportClosed(f"link to {self.peer} is closed")
