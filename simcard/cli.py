"""CLI commands of this room; see daemon/cli.py for the convention."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands."""
