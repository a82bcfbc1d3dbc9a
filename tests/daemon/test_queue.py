"""The sync queue: joining, modes, cancel, the bound."""

from __future__ import annotations

import pytest

from daemon.queue import Admit, RequestQueue


def test_requests_for_a_queued_pda_join_and_each_id_is_answered() -> None:
    q = RequestQueue(10)
    first = q.submit("a", "pda1", "auto")
    assert first.admit is Admit.QUEUED
    assert q.submit("b", "pda1", "auto").job is first.job
    assert q.submit("c", "pda2", "auto").admit is Admit.QUEUED
    assert len(q) == 2
    job = q.next()
    assert job is not None
    assert job is first.job
    assert job.running
    assert job.id == "a"
    # Joining the running sync, too.
    assert q.submit("d", "pda1", "auto") == first.__class__(Admit.JOINED, job)
    assert q.finish(job) == ["a", "b", "d"]
    nxt = q.next()
    assert nxt is not None
    assert nxt.pda == "pda2"
    assert q.finish(nxt) == ["c"]
    assert q.next() is None
    assert q.waiting == 0


def test_modes_join_upgrade_or_queue_behind() -> None:
    q = RequestQueue(10)
    auto = q.submit("a", "p", "auto").job
    # An explicit mode upgrades a queued auto job: its waiters asked for any sync.
    assert q.submit("s", "p", "slow").job is auto
    assert auto is not None
    assert auto.mode == "slow"
    # auto joins anything; another explicit mode queues behind, once.
    assert q.submit("a2", "p", "auto").job is auto
    card = q.submit("c", "p", "refresh-from-card")
    assert card.admit is Admit.QUEUED
    assert card.job is not auto
    assert q.submit("c2", "p", "refresh-from-card").job is card.job
    running = q.next()
    assert running is auto
    # A slow request joins the running slow sync; a fast-or-slow ("auto") one too.
    assert q.submit("s2", "p", "slow").job is running
    # refresh-from-pda cannot join either: a job of its own.
    assert q.submit("r", "p", "refresh-from-pda").admit is Admit.QUEUED
    assert len(q) == 2


def test_running_auto_job_is_not_upgraded() -> None:
    q = RequestQueue(10)
    q.submit("a", "p", "auto")
    job = q.next()
    slow = q.submit("s", "p", "slow")
    assert slow.admit is Admit.QUEUED
    assert job is not None
    assert job.mode == "auto"


def test_duplicate_id_is_answered_once() -> None:
    q = RequestQueue(10)
    q.submit("a", "p", "auto")
    assert q.submit("a", "p", "slow").admit is Admit.DUPLICATE
    assert q.waiting == 1


def test_the_bound_refuses_and_costs_nothing() -> None:
    q = RequestQueue(3)
    for rid in "abc":
        assert q.submit(rid, "p", "auto").admit in (Admit.QUEUED, Admit.JOINED)
    for i in range(1000):
        refused = q.submit(f"x{i}", "p", "auto")
        assert refused.admit is Admit.REFUSED
        assert refused.job is None
    assert q.waiting == 3
    assert q.peak == 3
    job = q.next()
    assert job is not None
    assert q.finish(job) == ["a", "b", "c"]
    assert q.submit("later", "p", "auto").admit is Admit.QUEUED


def test_cancel_queued_alone_removes_the_job() -> None:
    q = RequestQueue(10)
    q.submit("a", "p1", "auto")
    q.submit("b", "p2", "auto")
    out = q.cancel("a")
    assert out is not None
    assert out.detached
    assert len(q) == 1
    nxt = q.next()
    assert nxt is not None
    assert nxt.pda == "p2"
    assert q.cancel("a") is None


def test_cancel_one_of_several_waiters_detaches_only_it() -> None:
    q = RequestQueue(10)
    q.submit("a", "p", "auto")
    q.submit("b", "p", "auto")
    job = q.next()
    out = q.cancel("a")
    assert out is not None
    assert out.detached
    assert out.job is job
    assert job is not None
    assert not job.stopping
    assert q.finish(job) == ["b"]


def test_cancel_last_waiter_of_running_job_stops_it_and_nobody_joins() -> None:
    q = RequestQueue(10)
    q.submit("a", "p", "auto")
    job = q.next()
    out = q.cancel("a")
    assert out is not None
    assert not out.detached
    assert out.job is job
    assert job is not None
    assert job.stopping
    # Still pending until the job ends: a second cancel says the same.
    again = q.cancel("a")
    assert again is not None
    assert not again.detached
    late = q.submit("b", "p", "auto")
    assert late.admit is Admit.QUEUED
    assert late.job is not job
    assert q.finish(job) == ["a"]


def test_drain_and_misuse() -> None:
    q = RequestQueue(10)
    q.submit("a", "p", "auto")
    q.submit("b", "q", "auto")
    job = q.next()
    assert [j.waiters for j in q.drain()] == [["b"]]
    assert q.waiting == 1
    with pytest.raises(RuntimeError):
        q.next()
    assert job is not None
    q.finish(job)
    with pytest.raises(RuntimeError):
        q.finish(job)
    with pytest.raises(ValueError, match="at least 1"):
        RequestQueue(0)
