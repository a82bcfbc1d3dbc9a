"""Run ``simsync ARGS`` and, at exit, write the names of every loaded module to OUT.

Usage: ``python -m tests.startup.probe OUT ARGS...``. The start-up tests read OUT
to check that a command imports only what it uses (no pyscard for the PDA, no
vobject or card emulator for the phone's sync, no cryptography for a bare config).
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path


def _dump(out: Path) -> None:
    names = sorted(sys.modules)  # before json below adds itself
    import json

    out.write_text(json.dumps(names))


def main() -> None:
    """Register the dump, then run the CLI exactly as ``simsync`` would."""
    out = Path(sys.argv[1])
    atexit.register(_dump, out)
    from daemon.cli import main as simsync

    sys.argv = ["simsync", *sys.argv[2:]]
    # As the `simsync` script runs it: the process ends in there (daemon.cli._exit),
    # with the atexit handlers run, this one among them.
    sys.exit(simsync())


if __name__ == "__main__":
    main()
