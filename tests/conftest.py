"""Suite-wide fixtures. Room-specific fixtures live in tests/fixtures/ as plugins."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from daemon.logs import reset_logging

# No wall time decides a property test, in any run: hypothesis's default 200 ms deadline
# per example and its too-slow health check (1 s of data generation) can both fail on a
# loaded 2-core machine (test_codec's examples take up to ~80 ms alone), and a deadline
# exceeded once and not on the replay is reported as a failure. Tests assert behaviour.
settings.register_profile("simsync", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("simsync")
# CI runs the same examples every time (a red run is then always reproducible, and
# never a coin toss); developers' runs keep exploring new ones. A failure found
# locally is saved in .hypothesis/ and replayed first until it is fixed.
settings.register_profile(
    "ci", parent=settings.get_profile("simsync"), derandomize=True, print_blob=True
)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins: list[str] = [
    "tests.fixtures.pcsc",
    "tests.fixtures.bluez",
    "tests.fixtures.sdnotify",
    "tests.fixtures.mosquitto",
]


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


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with default logging: no test inherits another's set-up.

    ``simsync`` commands run in-process call ``configure_logging``; without this a later
    test would log through an earlier test's configuration (level, format, handlers).
    """
    reset_logging()
    yield
    reset_logging()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the session's pcscd carries the ``pcsc`` marker.

    So ``-m "not pcsc"`` runs exactly the tests that need no PC/SC stack, whether the
    marker was written on the module or not. Parametrized fixtures that reach pcscd
    dynamically mark their PC/SC param themselves (``_pcsc_marked`` catches a miss).
    """
    for item in items:
        if "pcscd" in getattr(item, "fixturenames", ()) and item.get_closest_marker("pcsc") is None:
            item.add_marker(pytest.mark.pcsc)


@pytest.fixture(autouse=True)
def _pcsc_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that reached pcscd (e.g. through getfixturevalue) without the marker."""
    yield
    if "pcscd" in request.fixturenames and request.node.get_closest_marker("pcsc") is None:
        pytest.fail(
            "this test uses pcscd but has no pcsc marker: add pytest.mark.pcsc "
            "(on the module, the test, or the fixture's pytest.param)",
            pytrace=False,
        )
