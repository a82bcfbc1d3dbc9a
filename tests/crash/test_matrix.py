"""Crash matrix (issue #4): ``kill -9`` of the phone, the PDA or the card emulator at every
protocol step, then a re-sync.

Every row starts from the same world: a 30-record card and a PDA that synced
once (slow, then fast), then edits on both sides since: on the card a modified,
a deleted and an added record; on the PDA a modified, a renamed, a deleted and
an added contact; and one record changed on both sides (a conflict, policy
``card-wins`` so that no duplicate is ever intended). The PDA also holds a
contact without a number, which never goes to the card.

All of it runs as real processes: ``simsync card serve`` on the card image
through pcscd + vpcd (reader ``Virtual PCD 00 00``), ``simsync pda serve`` on
loopback TCP + mutual TLS, and ``simsync sync --json`` as the phone. Faults are
injected by the wrappers :mod:`tests.crash.phone_run` / :mod:`tests.crash.pda_run`
(see :mod:`tests.crash.inject`): at the row's hook they ``SIGKILL`` their own
process, or, for the card rows, the ``card serve`` process (and then let the
phone run on into the lost card).

Each row then checks:

1. the crash happened where the row says (the victim died of SIGKILL), and the
   crashed run's result: a killed phone reports nothing; a phone whose PDA or
   card died reports ``ok: false``, except after the point of no return for the
   card, STORESYNC, when the card is no longer needed and the run is ``ok``
   (a PDA killed after promoting still fails the run: the phone never got
   ``Done``, and says so; the re-sync then finds nothing to do but stays fast);
   and whether the PDA was left holding a *pending* anchor (``Step.pending``):
   the rows that do are the window between "pending stored" and STORESYNC (or
   between STORESYNC and ``Done``) where a slow sync would be the classic bug;
2. after restarting what was killed, a re-sync is ``ok`` and **fast** (never a
   slow sync: the card's last anchor is always the PDA's last or its pending
   one, whatever step died);
3. one more sync is fast and moves nothing (the re-sync left nothing half done);
4. both sides are equal: the card's records and the PDA's contacts with a
   number, as multisets of (name, number), equal the expected merge of the
   edits: **zero lost** (nothing a person did not delete is missing),
   **zero duplicates** (every pair exactly once), deletions stayed deleted,
   the conflict resolved once, the number-less contact still on the PDA only.

The steps (hook names: ``sent:K`` after message K went out, ``recv:K`` after K
arrived, ``before-send:K`` when K is ready but not sent, ``after:m``/``before:m``
around a ``PhonebookCard`` method):

phone killed
    after NEWSYNC; after Alert sent; after AlertReply received; between two
    READ RECORDs of CardData; after CardData sent; after PdaOps received; after
    the first UPDATE RECORD; after all UPDATEs (before Applied); after Applied
    sent; after Prepared received (the PDA's pending anchor is stored, STORESYNC
    not sent); after STORESYNC (before Committed); after Committed sent (before
    Done).
PDA killed
    after receiving Alert (before AlertReply); after receiving CardData (before
    touching the vdir); after applying the card's changes to the vdir (before
    PdaOps); after PdaOps sent; after receiving Applied (before storing
    pending); after storing pending (before Prepared); after Prepared sent;
    after receiving Committed (before promoting); after promoting (before Done).
card emulator killed
    after NEWSYNC; between two READ RECORDs of CardData; between two UPDATE
    RECORDs; right before STORESYNC; right after STORESYNC.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.pcsc import Pcscd, ServedCard

from .world import EXPECTED, NO_NUMBER, PhoneRun, World, make_template

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]


@dataclass(frozen=True)
class Step:
    """One row: who is killed, at which hook, what the crashed run reports, what it left.

    ``pending``: whether the crash leaves the PDA with a pending anchor (prepared, not
    promoted), i.e. the row sits in the window the issue singles out; None where that
    depends on how far the surviving side got before it noticed (a race, not a rule).
    """

    name: str
    who: str  # "phone", "pda" or "card"
    hook: str
    crashed_ok: bool = False
    pending: bool | None = False


STEPS = [
    Step("phone/after-newsync", "phone", "after:new_sync"),
    Step("phone/alert-sent", "phone", "sent:Alert"),
    Step("phone/alertreply-received", "phone", "recv:AlertReply"),
    Step("phone/mid-carddata-reads", "phone", "after:read_record"),
    Step("phone/carddata-sent", "phone", "sent:CardData"),
    Step("phone/pdaops-received", "phone", "recv:PdaOps"),
    Step("phone/first-update", "phone", "after:write_record"),
    Step("phone/all-updates", "phone", "before-send:Applied"),
    Step("phone/applied-sent", "phone", "sent:Applied", pending=None),
    Step("phone/prepared-received", "phone", "recv:Prepared", pending=True),
    Step("phone/after-storesync", "phone", "after:store_sync", pending=True),
    Step("phone/committed-sent", "phone", "sent:Committed", pending=None),
    Step("pda/alert-received", "pda", "before-send:AlertReply"),
    Step("pda/carddata-received", "pda", "recv:CardData"),
    Step("pda/card-changes-applied", "pda", "before-send:PdaOps"),
    Step("pda/pdaops-sent", "pda", "sent:PdaOps"),
    Step("pda/applied-received", "pda", "recv:Applied"),
    Step("pda/pending-stored", "pda", "before-send:Prepared", pending=True),
    Step("pda/prepared-sent", "pda", "sent:Prepared", pending=True),
    Step("pda/committed-received", "pda", "recv:Committed", pending=True),
    Step("pda/promoted", "pda", "before-send:Done"),
    Step("card/after-newsync", "card", "after:new_sync"),
    Step("card/mid-carddata-reads", "card", "after:read_record"),
    Step("card/mid-apply", "card", "after:write_record"),
    Step("card/before-storesync", "card", "before:store_sync", pending=True),
    # STORESYNC is the point of no return: the phone needs the card no more and finishes ok.
    Step("card/after-storesync", "card", "after:store_sync", crashed_ok=True),
]

NOTHING = {"added": 0, "modified": 0, "deleted": 0}


@pytest.fixture(scope="module")
def template(pcscd: Pcscd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synced world every row copies (made once: two in-process syncs)."""
    return make_template(tmp_path_factory.mktemp("crash") / "template")


@pytest.fixture
def world(template: Path, tmp_path: Path) -> Iterator[World]:
    """This row's copy, edited on both sides; its PDA process is stopped by PID at the end."""
    w = World(template, tmp_path / "world")
    try:
        yield w
    finally:
        w.pda.stop()


def _crashed(run: PhoneRun, step: Step) -> str:
    return f"{step.name}: rc {run.returncode}, result {run.result}, stderr:\n{run.stderr[-3000:]}"


def _crash(world: World, served: ServedCard, step: Step) -> None:
    """Run the sync that crashes at ``step``; restart what was killed."""
    if step.who == "phone":
        run = world.phone(step.hook)
        assert run.returncode == -signal.SIGKILL, _crashed(run, step)
        assert run.result is None
        return
    if step.who == "pda":
        run = world.phone()
        world.pda.wait_killed()
        assert run.result is not None, _crashed(run, step)
        assert run.result["ok"] is False, _crashed(run, step)
        world.pda.start()
        return
    run = world.phone(step.hook, kill=served.pid)
    assert f"SIGKILL {served.pid} at {step.hook}" in run.stderr, _crashed(run, step)
    assert served.proc is not None
    served.kill()  # reaps it: the phone's SIGKILL must be what ended it
    assert served.proc.returncode == -signal.SIGKILL
    assert run.result is not None, _crashed(run, step)
    assert run.result["ok"] is step.crashed_ok, _crashed(run, step)
    served.wait_absent()
    served.start()


@pytest.mark.parametrize("step", STEPS, ids=[s.name for s in STEPS])
def test_kill_9_then_resync_is_fast_equal_lossless_and_duplicate_free(
    step: Step, world: World, serve_card: Callable[..., ServedCard]
) -> None:
    served = serve_card(world.image)
    world.pda.start(crash_at=step.hook if step.who == "pda" else None)

    _crash(world, served, step)
    if step.pending is not None:
        assert world.pda_pending() is step.pending, f"{step.name}: PDA pending anchor"

    resync = world.phone()
    assert resync.result is not None, _crashed(resync, step)
    assert resync.result["ok"], _crashed(resync, step)
    assert resync.result["mode"] == "fast", f"{step.name}: re-sync was {resync.result}"
    again = world.phone()
    assert again.result is not None, _crashed(again, step)
    assert again.result["ok"], _crashed(again, step)
    assert again.result["mode"] == "fast"
    assert again.result["to_pda"] == NOTHING, f"{step.name}: {again.result}"
    assert again.result["to_card"] == NOTHING, f"{step.name}: {again.result}"

    world.pda.stop()
    assert served.stop() == 0
    card = world.card_records()
    pda, without_number = world.pda_contacts()
    assert card == pda, f"{step.name}: sides differ: card-only {card - pda}, pda-only {pda - card}"
    assert [k for k, n in card.items() if n > 1] == [], f"{step.name}: duplicates on the card"
    assert [k for k, n in pda.items() if n > 1] == [], f"{step.name}: duplicates on the PDA"
    lost = EXPECTED - card
    assert not lost, f"{step.name}: lost {lost}"
    assert card == EXPECTED, f"{step.name}: unexpected {card - EXPECTED}"
    assert without_number == [NO_NUMBER]
