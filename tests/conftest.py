"""Suite-wide fixtures. Room-specific fixtures live in tests/fixtures/ as plugins."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

pytest_plugins: list[str] = ["tests.fixtures.pcsc"]


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
