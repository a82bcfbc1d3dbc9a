"""What a command prints for its reader on stdout, and what is left when that reader has gone.

Imported by the `simsync` entry point itself: only ``os`` and ``sys`` (start-up).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["print_line", "quiet_stderr", "to_devnull"]


def print_line(text: str) -> bool:
    """Print `text` and its newline on stdout in one write, flushed now; False if nobody reads.

    One write: ``print`` writes the text and the newline apart, and unbuffered (as under
    ``PYTHONUNBUFFERED=1``) those are two writes, so a reader that takes the first and
    closes (``| head -c 20``) makes the second one fail. A reader that has gone is not the
    command's failure: stdout goes to /dev/null (`to_devnull`) and the caller keeps its
    exit status.
    """
    stream = sys.stdout
    if stream is None:  # started with descriptor 1 closed
        return False
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        to_devnull(stream)
        return False
    return True


def to_devnull(*streams: TextIO | None) -> None:
    """Point each stream's descriptor at /dev/null, after its reader went away.

    As the Python docs advise ("Note on SIGPIPE"): what stays in the stream's buffer, and
    any later write, then goes nowhere instead of failing again at the exit's flush
    ("Exception ignored ... BrokenPipeError", exit status 120).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams:
            if stream is None:  # started with that descriptor closed
                continue
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):  # not a descriptor (a test's capture), or closed
                continue
    finally:
        os.close(devnull)


class _QuietStream:
    """A text stream whose reader going away is not an error: from then on it writes to
    /dev/null. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            to_devnull(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            to_devnull(self._stream)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def quiet_stderr() -> None:
    """Make ``sys.stderr`` lose its reader quietly (``simsync sync 2>&1 | head -c 0``).

    stderr carries diagnostics only: a message or log line nobody can read any more must
    not turn the command's exit status into 141 (a `BrokenPipeError` out of ``print``)
    or 120 (the interpreter's last flush). stdout keeps its own rule (`print_line`).
    """
    if sys.stderr is not None and not isinstance(sys.stderr, _QuietStream):
        sys.stderr = _QuietStream(sys.stderr)
