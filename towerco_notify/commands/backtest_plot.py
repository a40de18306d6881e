"""`backtest --plot`: one panel per changed series, the samples with each rule set's
thresholds and alert intervals, so an operator sees *why* the counts differ.

matplotlib is optional (`pip install 'towerco-notify[plot]'`), imported only here.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.backtest import Outcome, Series

COLORS = {"old": "#7f7f7f", "new": "#d62728"}
LEVEL_ALPHA = {"warning": 0.18, "critical": 0.35}


def plot(series: list[Series], out: Path, old_name: str, new_name: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "towerco-notify backtest: --plot needs matplotlib (pip install 'towerco-notify[plot]')",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    panels = max(1, len(series))
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.6 * panels), squeeze=False)
    for ax, s in zip(axes[:, 0], series, strict=False):
        times = [datetime.fromtimestamp(t, UTC) for t in (s.times or ())]
        ax.plot(times, list(s.values or ()), lw=0.9, color="#1f77b4", label="samples")
        for side, out_, name, lane in (
            ("old", s.old, old_name, (0.0, 0.5)),
            ("new", s.new, new_name, (0.5, 1.0)),
        ):
            _thresholds(ax, out_, side, name)
            _intervals(ax, out_, side, lane, s.last_seen or 0.0)
        ax.set_title(
            f"{'/'.join(s.key)}: {s.old.warning}W {s.old.critical}C -> "
            f"{s.new.warning}W {s.new.critical}C",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="upper right")
    if not series:
        axes[0, 0].text(0.5, 0.5, "no series differ", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _thresholds(ax: object, out: Outcome, side: str, name: str) -> None:
    rule = out.rule
    if rule is None:
        return
    style = "--" if side == "old" else "-"
    for level, value in (("warning", rule.warning), ("critical", rule.critical)):
        if value is not None:
            ax.axhline(  # type: ignore[attr-defined]
                value, ls=style, lw=0.8, color=COLORS[side], label=f"{side} {level} ({name})"
            )


def _intervals(ax: object, out: Outcome, side: str, lane: tuple[float, float], last: float) -> None:
    """Alert intervals as shaded bands: the old rules in the lower half, the new above."""
    for iv in out.intervals:
        end = iv.end if iv.end is not None else last
        ax.axvspan(  # type: ignore[attr-defined]
            datetime.fromtimestamp(iv.start, UTC),
            datetime.fromtimestamp(max(end, iv.start + 1), UTC),
            ymin=lane[0],
            ymax=lane[1],
            color=COLORS[side],
            alpha=LEVEL_ALPHA.get(iv.level, 0.2),
            lw=0,
        )
