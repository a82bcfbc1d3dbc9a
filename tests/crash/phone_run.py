"""``simsync`` (the phone) with one crash hook: run as ``python -m tests.crash.phone_run ARGS``.

Patches, before running ``daemon.cli.main``:

- the TLS link ``daemon.sync`` gets from ``tls_client`` is wrapped in
  :class:`~tests.crash.inject.WatchedLink` (hooks per protocol message);
- ``PhonebookCard.new_sync`` / ``read_record`` / ``write_record`` /
  ``store_sync`` fire ``after:<method>`` once they returned (``store_sync``
  also ``before:store_sync``), so a crash lands between two card commands.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import daemon.sync
import transports
from cardio.session import PhonebookCard
from daemon.cli import main
from transports import FrameLink

from .inject import WatchedLink, fire


def _wrap_card_method(name: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(PhonebookCard, name)

    @functools.wraps(original)
    async def wrapper(self: PhonebookCard, *args: Any, **kwargs: Any) -> Any:
        fire(f"before:{name}")
        result = await original(self, *args, **kwargs)
        fire(f"after:{name}")
        return result

    setattr(PhonebookCard, name, wrapper)


def install() -> None:
    """Put every hook in place (idempotent enough for one process)."""
    for name in ("new_sync", "read_record", "write_record", "store_sync"):
        _wrap_card_method(name)
    tls_client = transports.tls_client  # what daemon.sync imported by name

    async def watched_tls_client(*args: Any, **kwargs: Any) -> FrameLink:
        return WatchedLink(await tls_client(*args, **kwargs))

    # Patched in daemon.sync's namespace: that is where _sync_card looks the name up.
    vars(daemon.sync)["tls_client"] = watched_tls_client


if __name__ == "__main__":
    install()
    sys.exit(main())
