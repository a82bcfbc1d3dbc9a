"""Fixtures of the contact-store tests: both store implementations, test vCards, aged files."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pda.store import ContactStore, MemoryStore
from pda.vdir import VdirStore

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["memory", "vdir"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ContactStore:
    """Each contract test runs once per implementation."""
    if request.param == "memory":
        return MemoryStore()
    return VdirStore(tmp_path / "contacts")


@pytest.fixture
def vdir(tmp_path: Path) -> Path:
    """An empty vdir directory."""
    path = tmp_path / "contacts"
    path.mkdir()
    return path


def age(*paths: Path, seconds: float = 60.0) -> None:
    """Backdate files, as if written long before the scan (outside the racy window)."""
    past = time.time_ns() - int(seconds * 1e9)
    for p in paths:
        os.utime(p, ns=(past, past))


@pytest.fixture
def copy_data(vdir: Path) -> Callable[[str], Path]:
    """Copy one test vCard into the vdir, backdated; returns its path there."""

    def copy(name: str) -> Path:
        target = vdir / name
        shutil.copyfile(DATA / name, target)
        age(target)
        return target

    return copy
