"""Top-level commands owned by the daemon room: ``sync``, ``id``, ``demo``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the daemon's commands to the top-level parser."""
