"""Fixtures of the PC/SC end-to-end tests: PDA processes stopped by PID in teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e_pcsc.rig import PdaProc


@pytest.fixture
def pda_proc(tmp_path: Path) -> Iterator[Callable[[str], PdaProc]]:
    """Factory ``pda_proc(name) -> PdaProc`` (initialised, not started); all stopped at the end."""
    made: list[PdaProc] = []

    def factory(name: str) -> PdaProc:
        pda = PdaProc(tmp_path / name)
        made.append(pda)
        return pda

    try:
        yield factory
    finally:
        for pda in made:
            pda.stop()
