"""The package root imports nothing heavy: the PDA side never loads pyscard."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cardio

_PROBE = """
import sys
{setup}
heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'smartcard'
               or m in ('cardio.pcsc', 'cardio.events', 'cardio.inproc'))
print(','.join(heavy))
"""


def _loaded(setup: str) -> str:
    code = _PROBE.format(setup=setup)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    "setup",
    [
        "import cardio",
        "import cardio.codecs, cardio.errors",
        # What `simsync pda serve` loads: the whole CLI parser, then the PDA node.
        "from daemon.cli import build_parser; build_parser(); import pda.node, pda.cli",
    ],
)
def test_nothing_heavy_is_imported(setup: str) -> None:
    assert _loaded(setup) == ""


def test_a_name_is_imported_on_first_use() -> None:
    assert _loaded("from cardio import PcscLink") != ""
    assert cardio.Sim.__module__ == "cardio.sim"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = cardio.Nope
    assert set(dir(cardio)) == set(cardio.__all__)
