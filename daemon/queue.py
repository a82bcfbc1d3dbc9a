"""The daemon's sync queue: pure bookkeeping, no asyncio, no broker.

A *job* is one sync of one PDA in one mode; each request id waiting for it is a
*waiter* and gets its own result when the job ends. A request for a PDA whose
sync is already running or queued joins that job (spec/mqtt.md), when the modes
agree:

- ``auto`` joins any sync of that PDA (every mode answers "sync now");
- an explicit mode joins a job of the same mode, or upgrades a still *queued*
  ``auto`` job to itself (its waiters asked for any sync);
- otherwise a new job is queued behind (at most one per PDA and mode).

So the queue holds at most one running job plus one job per (PDA, mode), and at
most ``max_waiting`` request ids in all: a request beyond that is refused (the
daemon answers it ``busy``) and costs nothing. A repeated id of a pending request
(a QoS 1 redelivery) is a duplicate: it is already going to be answered.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Admission", "Admit", "CancelOutcome", "Job", "RequestQueue"]


@dataclass(eq=False)
class Job:
    """One sync to run; ``waiters`` are the request ids its result goes to."""

    pda: str
    mode: str
    waiters: list[str] = field(default_factory=list)
    running: bool = False
    # Running, and every waiter cancelled it: the daemon is stopping it; nobody joins it.
    stopping: bool = False

    @property
    def id(self) -> str:
        """The id the sync runs under (its first waiter's; logs and progress use it)."""
        return self.waiters[0] if self.waiters else ""


class Admit(Enum):
    """What ``submit`` did with a request."""

    QUEUED = "queued"  # a new job
    JOINED = "joined"  # an existing job (queued or running)
    DUPLICATE = "duplicate"  # that id is already waiting: nothing to do
    REFUSED = "refused"  # the queue is full: answer busy


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of ``submit``; ``job`` is None only when refused."""

    admit: Admit
    job: Job | None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What ``cancel`` did.

    ``detached``: the request left its job and is answered ``cancelled`` now (the job
    runs on for its other waiters, or, queued with nobody left, is gone). Otherwise
    it was the last waiter of the running job: ``stop`` it; the request is answered
    when the job ends (``cancelled``, or its real result if the commit was under way).
    """

    job: Job
    detached: bool


class RequestQueue:
    """Jobs in arrival order, one running at a time; see the module docstring."""

    def __init__(self, max_waiting: int) -> None:
        if max_waiting < 1:
            raise ValueError("max_waiting must be at least 1")
        self.max_waiting = max_waiting
        self._queued: deque[Job] = deque()
        self.running: Job | None = None
        self._owner: dict[str, Job] = {}  # request id -> its job
        self.peak = 0  # the most request ids ever held at once (for tests and benchmarks)

    @property
    def waiting(self) -> int:
        """Request ids held now (queued and running)."""
        return len(self._owner)

    def __len__(self) -> int:
        """Jobs queued (not counting the running one)."""
        return len(self._queued)

    def submit(self, rid: str, pda: str, mode: str) -> Admission:
        """Take request ``rid`` for ``pda`` in ``mode``; see ``Admit``."""
        if rid in self._owner:
            return Admission(Admit.DUPLICATE, self._owner[rid])
        if len(self._owner) >= self.max_waiting:
            return Admission(Admit.REFUSED, None)
        job, admit = self._joinable(pda, mode), Admit.JOINED
        if job is None:
            job, admit = Job(pda, mode), Admit.QUEUED
            self._queued.append(job)
        job.waiters.append(rid)
        self._owner[rid] = job
        self.peak = max(self.peak, len(self._owner))
        return Admission(admit, job)

    def _joinable(self, pda: str, mode: str) -> Job | None:
        run = self.running
        if run is not None and not run.stopping and run.pda == pda and mode in ("auto", run.mode):
            return run
        same = [j for j in self._queued if j.pda == pda]
        for job in same:
            if mode in ("auto", job.mode):
                return job
        for job in same:
            if job.mode == "auto":
                job.mode = mode  # its waiters asked for any sync: this one does
                return job
        return None

    def next(self) -> Job | None:
        """The oldest queued job, now running; None when nothing is queued."""
        if self.running is not None:
            raise RuntimeError("a job is running: finish() it first")
        if not self._queued:
            return None
        job = self._queued.popleft()
        job.running = True
        self.running = job
        return job

    def finish(self, job: Job) -> list[str]:
        """The running ``job`` ended: the request ids to answer (in arrival order)."""
        if job is not self.running:
            raise RuntimeError("finish() takes the running job")
        self.running = None
        for rid in job.waiters:
            del self._owner[rid]
        return list(job.waiters)

    def cancel(self, rid: str) -> CancelOutcome | None:
        """Withdraw request ``rid``; None when it is not pending (answered already)."""
        job = self._owner.get(rid)
        if job is None:
            return None
        if job.running and job.waiters == [rid]:
            job.stopping = True
            return CancelOutcome(job, detached=False)
        del self._owner[rid]
        job.waiters.remove(rid)
        if not job.waiters:
            self._queued.remove(job)
        return CancelOutcome(job, detached=True)

    def drain(self) -> list[Job]:
        """Remove every queued job (the daemon is stopping); the running one stays."""
        jobs = list(self._queued)
        self._queued.clear()
        for job in jobs:
            for rid in job.waiters:
                del self._owner[rid]
        return jobs
