"""A real systemd to run the units under: `systemd-nspawn -b` on a throwaway copy of `/`.

This machine has no systemd as PID 1, but `systemd-nspawn` boots Debian's systemd as
PID 1 of a container (measured: boot to the target in ~0.5 s). The container's root
is an overlay of the host's `/` with a tmpfs on top, so everything the test installs
(units, users, /etc/simsync, a venv in /opt/simsync) and everything systemd does at
boot lands in memory and is gone when the container is. The overlay, its tmpfs and
nspawn itself run in a private mount namespace (`unshare -m`), so no mount outlives
the container either. The container has its own network (`--private-network`: only
loopback), so its pcscd, vpcd ports and mosquitto meet nothing else on the machine.
nspawn's own seccomp filter denies `bpf()`, and without it systemd silently skips
`IPAddressDeny=` and `DevicePolicy=` (BPF programs on the unit's cgroup):
`--system-call-filter=bpf` lets them be enforced as on a host.

`/opt/simsync` is a venv made with Debian's python3, as systemd/README.md installs
it, that finds the checkout (bound read-only at /opt/simsync-src) and the test
venv's installed dependencies (bound at /opt/simsync-deps) through a `.pth` file:
the units run unchanged, with `ProtectHome=yes` hiding nothing they need wherever
the checkout lives.

The booted target is `simsync-test.target` (basic.target only), so none of the
host's enabled services start. Processes inside are reached with `nsenter`, files
through `/proc/PID/root`. `close()` kills the container's PID 1 by PID (the kernel
then ends every process of its PID namespace) and removes its cgroups.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.fixtures.sdnotify import NotifySocket

REPO = Path(__file__).resolve().parents[2]
TARGET = "simsync-test.target"
SRC, DEPS = "/opt/simsync-src", "/opt/simsync-deps"
SIMSYNC = "/opt/simsync/bin/simsync"  # what the units run

_TARGET_UNIT = """[Unit]
Description=simsync test boot: basic.target and nothing the host enabled
Requires=basic.target
After=basic.target
"""

# The console script pip writes for `simsync = "daemon.cli:main"`.
_SCRIPT = """#!/opt/simsync/bin/python3
import sys
from daemon.cli import main
if __name__ == "__main__":
    sys.exit(main())
"""

_BOOT = r"""
set -eu
mount -t tmpfs -o mode=0755 tmpfs "$LAYERS"
mkdir "$LAYERS/upper" "$LAYERS/work" "$LAYERS/root"
cp -a "$STAGE/." "$LAYERS/upper/"
mount -t overlay overlay -o "lowerdir=/,upperdir=$LAYERS/upper,workdir=$LAYERS/work" "$LAYERS/root"
for cg in $CGROUPS; do echo $$ > "$cg/cgroup.procs"; done
exec systemd-nspawn --quiet --register=no --keep-unit --link-journal=no \
    --private-network --notify-ready=yes --directory="$LAYERS/root" --system-call-filter=bpf \
    --bind-ro="$REPO:$SRC" --bind-ro="$DEPS_HOST:$DEPS" \
    --boot -- --unit="$TARGET"
"""


class LineStream:
    """Lines of a long-running command's stdout, awaited with a deadline (no sleeps)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buf = b""
        self.lines: list[str] = []  # everything read so far

    def next_line(self, deadline: float) -> str:
        """The next line; AssertionError at ``deadline`` (monotonic) or when it ends."""
        out = self.proc.stdout
        assert out is not None
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out; read so far:\n" + "\n".join(self.lines[-30:]))
            select.select([out], [], [], left)
            chunk = out.read()
            if chunk == b"":
                raise AssertionError("stream ended:\n" + "\n".join(self.lines[-30:]))
            self._buf += chunk or b""
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.decode(errors="replace")
        self.lines.append(text)
        return text

    def until(self, match: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Read lines until one matches; return it."""
        deadline = time.monotonic() + timeout
        while not match(line := self.next_line(deadline)):
            pass
        return line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Machine:
    """A booted container; ``run`` executes a command inside it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stage = tmp / "stage"  # copied into the overlay's upper layer before boot
        self.console = tmp / "console.log"
        self.pid = 0  # PID 1 of the container, as the host sees it
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._cgroups: list[Path] = []
        self._streams: list[LineStream] = []

    # -- before boot ---------------------------------------------------------------

    def stage_file(self, path: str, text: str, mode: int = 0o644, owner: str = "") -> None:
        """Put ``text`` at ``path`` in the container's root (before boot)."""
        dest = self.stage / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        dest.chmod(mode)
        if owner:
            subprocess.run(["chown", owner, str(dest)], check=True)

    def _stage_base(self) -> None:
        self.stage_file("/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
        self.stage_file(f"/etc/systemd/system/{TARGET}", _TARGET_UNIT)
        # The test venv's compiled dependencies (pyscard, cryptography) must load in it.
        debian = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert debian == str(sys.version_info[:2]), (
            f"/usr/bin/python3 is {debian}, the test venv {sys.version_info[:2]}: "
            "/opt/simsync (Debian's python3) could not load the venv's compiled packages"
        )
        venv = self.stage / "opt/simsync"
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
        (site,) = venv.glob("lib/python3*/site-packages")
        (site / "simsync-checkout.pth").write_text(f"{SRC}\n{DEPS}\n")
        self.stage_file(SIMSYNC, _SCRIPT, 0o755)

    # -- boot and teardown ---------------------------------------------------------

    def boot(self, timeout: float = 60.0) -> None:
        """Boot to ``simsync-test.target``; return once systemd reports startup finished."""
        self._stage_base()
        self._cgroups = _make_cgroups(f"simsync-test-{uuid.uuid4().hex[:12]}")
        notify = NotifySocket(self.tmp / "nspawn-notify.sock")
        layers = self.tmp / "layers"
        layers.mkdir()
        env = {
            **os.environ,
            "NOTIFY_SOCKET": notify.address,
            "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1",  # cgroup v2 in the container, as Debian 12
            "LAYERS": str(layers),
            "STAGE": str(self.stage),
            "CGROUPS": " ".join(map(str, self._cgroups)),
            "REPO": str(REPO),
            "SRC": SRC,
            "DEPS": DEPS,
            "DEPS_HOST": sysconfig.get_paths()["purelib"],
            "TARGET": TARGET,
        }
        try:
            with self.console.open("wb") as console:
                self._nspawn = subprocess.Popen(
                    ["unshare", "-m", "--propagation", "private", "sh", "-c", _BOOT],
                    stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            notify.receive_until(lambda m: m.fields.get("READY") == "1", timeout, "READY=1")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nconsole:\n{self.console.read_text()[-3000:]}") from None
        finally:
            notify.close()
        self.pid = _container_init(self._nspawn.pid)

    def close(self) -> None:
        """Kill the container (by its PID 1), reap nspawn, remove the cgroups."""
        for stream in self._streams:
            stream.close()
        if self._nspawn is not None:
            if self.pid and self._nspawn.poll() is None:
                os.kill(self.pid, 9)
            try:
                self._nspawn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._nspawn.kill()
                self._nspawn.wait(timeout=10)
        for top in self._cgroups:
            _remove_cgroup(top)

    # -- inside --------------------------------------------------------------------

    def argv(self, *argv: str) -> list[str]:
        return ["nsenter", f"--target={self.pid}", "--all", "--", *argv]

    def run(
        self, *argv: str, check: bool = True, input: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(*argv), input=input, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} exited {done.returncode}\n{done.stdout}{done.stderr}"
                + self.run("journalctl", "--no-pager", "-n", "60", check=False).stdout
            )
        return done

    def as_user(self, user: str, *argv: str) -> str:
        """``argv`` run as ``user`` (runuser), its stdout stripped."""
        return self.run("runuser", "-u", user, "--", *argv).stdout.strip()

    def path(self, path: str) -> Path:
        """A path inside the container, as the host reaches it."""
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def stream(self, *argv: str) -> LineStream:
        """Start ``argv`` inside; its stdout lines are read with ``LineStream.until``."""
        stream = LineStream(self.argv(*argv))
        self._streams.append(stream)
        return stream

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show`` properties of ``unit``."""
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> list[dict[str, Any]]:
        """Every journal entry the unit's own processes wrote (not systemd's about it)."""
        out = self.run("journalctl", f"_SYSTEMD_UNIT={unit}", "--output=json", "--no-pager").stdout
        return [json.loads(line) for line in out.splitlines()]


def _cgroup_roots() -> list[Path]:
    """Where to make the container's cgroups: cgroup v2 and (hybrid) name=systemd v1."""
    mine = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        num, controllers, path = line.split(":", 2)
        mine["v2" if num == "0" else controllers] = path.lstrip("/")
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point, fstype = fields[4], fields[fields.index("-") + 1]
        if fstype == "cgroup2" and "v2" in mine:
            roots.append(Path(point) / mine["v2"])
        elif fstype == "cgroup" and "name=systemd" in fields[-1] and "name=systemd" in mine:
            roots.append(Path(point) / mine["name=systemd"])
    assert roots, "no cgroup v2 or name=systemd hierarchy mounted"
    return roots


def _make_cgroups(name: str) -> list[Path]:
    made = []
    for root in _cgroup_roots():
        (root / name).mkdir()
        made.append(root / name)
    return made


def _remove_cgroup(top: Path) -> None:
    """rmdir ``top`` and everything under it, deepest first (all must be empty by now)."""
    if not top.exists():
        return
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for d in [*dirs, top]:
        d.rmdir()


def _descendants(pid: int) -> Iterator[int]:
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            yield int(child)
            yield from _descendants(int(child))


def _container_init(pid: int) -> int:
    """The descendant of ``pid`` that is PID 1 of its own PID namespace."""
    for child in _descendants(pid):
        status = Path(f"/proc/{child}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        ids = nspid.split()[1:]
        if len(ids) > 1 and ids[-1] == "1":
            return child
    raise AssertionError(f"no container init under PID {pid}")


if __name__ == "__main__":  # pragma: no cover - by hand: boot, print the PID, wait
    m = Machine(Path(sys.argv[1]))
    m.boot()
    print(m.pid, flush=True)
    try:
        sys.stdin.read()
    finally:
        m.close()
