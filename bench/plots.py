"""The report's PNG plots (matplotlib, from the ``bench`` extra; no display needed)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

from bench.book import Timings
from bench.card_cost import Cost
from bench.cli_compare import Compared, Runs


def _mid_err(values: Sequence[float]) -> tuple[float, float, float]:
    """Median and the distances down to the min and up to the max, in ms."""
    ms = [v * 1000 for v in values]
    mid = statistics.median(ms)
    return mid, mid - min(ms), max(ms) - mid


def sync_vs_book(path: Path, books: Sequence[tuple[int, Sequence[Timings]]]) -> None:
    """Median sync time (wall and CPU, min-max bars) against book size, one line per scenario."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    labels = [r.label for r in books[0][1] if not r.label.startswith("first")]
    for ax, what in zip(axes, ("wall", "CPU"), strict=True):
        for label in labels:
            xs, mids, lo, hi = [], [], [], []
            for n, rows in books:
                row = next(r for r in rows if r.label == label)
                mid, down, up = _mid_err(row.walls if what == "wall" else row.cpus)
                xs.append(n)
                mids.append(mid)
                lo.append(down)
                hi.append(up)
            ax.errorbar(xs, mids, yerr=[lo, hi], marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("contacts on the PDA (card: 250 records, full)")
        ax.set_title(f"one sync, {what} time (median, min-max)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def card_cost(path: Path, costs: Sequence[Cost]) -> None:
    """APDUs and modelled 9600-baud time against changed records, with the naive full read."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    names = {
        "card": "fast sync, k changed on the card",
        "pda": "fast sync, k changed on the PDA",
        "naive": "naive: read all 250 records",
    }
    for side, label in names.items():
        pts = sorted((c.changed, c) for c in costs if c.side == side)
        ks = [k for k, _ in pts]
        style = "--" if side == "naive" else "-o"
        axes[0].plot(ks, [c.apdus for _, c in pts], style, label=label)
        axes[1].plot(ks, [c.t0_seconds for _, c in pts], style, label=label)
    axes[0].set_ylabel("APDUs")
    axes[1].set_ylabel("seconds on a T=0 card at 9600 baud (modelled)")
    for ax in axes:
        ax.set_xlabel("k changed records")
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    axes[0].set_title("card commands per sync")
    axes[1].set_title("card link time per sync")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cli_vs_vdirsyncer(path: Path, compared: Sequence[tuple[int, Compared]]) -> None:
    """Bars: simsync sync and vdirsyncer sync, wall and CPU, at each measured book size."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    width = 0.38
    for ax, what in zip(axes, ("wall", "CPU"), strict=True):
        for j, tool in enumerate(("simsync sync", "vdirsyncer sync")):
            xs, mids, lo, hi = [], [], [], []
            for i, (_, c) in enumerate(compared):
                runs: Runs | None = c.simsync if j == 0 else c.vdirsyncer
                if runs is None:
                    continue
                mid, down, up = _mid_err(runs.walls if what == "wall" else runs.cpus)
                xs.append(i + (j - 0.5) * width)
                mids.append(mid)
                lo.append(down)
                hi.append(up)
            ax.bar(xs, mids, width, yerr=[lo, hi], capsize=3, label=tool)
        ax.set_xticks(range(len(compared)), [f"{n:,} contacts" for n, _ in compared])
        ax.set_ylabel("ms")
        ax.set_title(f"same vdir, same 5 changes: {what} time (median, min-max)")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
