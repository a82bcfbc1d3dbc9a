"""``simsync`` (the PDA server) with one crash hook: ``python -m tests.crash.pda_run ARGS``.

The TLS link ``pda.node`` gets from ``tls_server`` is wrapped in
:class:`~tests.crash.inject.WatchedLink`, so ``before-send:Prepared`` kills the
PDA after its pending anchor is durable and before the phone hears of it, and so
on for every message the PDA sends or receives.
"""

from __future__ import annotations

import sys
from typing import Any

import pda.node
import transports
from daemon.cli import main
from transports import FrameLink

from .inject import WatchedLink


def install() -> None:
    """Wrap the PDA's TLS links."""
    tls_server = transports.tls_server  # what pda.node imported by name

    async def watched_tls_server(*args: Any, **kwargs: Any) -> FrameLink:
        return WatchedLink(await tls_server(*args, **kwargs))

    # Patched in pda.node's namespace: that is where PdaServer looks the name up.
    vars(pda.node)["tls_server"] = watched_tls_server


if __name__ == "__main__":
    install()
    sys.exit(main())
