"""Suite-wide fixtures. Room-specific fixtures live in tests/fixtures/ as plugins."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI runs the same examples every time (a red run is then always reproducible, and
# never a coin toss); developers' runs keep exploring new ones. A failure found
# locally is saved in .hypothesis/ and replayed first until it is fixed.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins: list[str] = ["tests.fixtures.pcsc", "tests.fixtures.bluez"]


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (helper threads of a link, servers...)."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
    ]
    for t in leaked:
        t.join(timeout=2.0)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test leaked threads: {still}"
