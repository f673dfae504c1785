"""Charts as PNG bytes (matplotlib, no display): for the results report and the run artifacts.

Each function takes a computed frame and returns one figure; an empty frame gives a figure
that says what is missing, so a report never has a hole where a chart should be.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and workers

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from tasks.report.outcomes import HOLDOUT, OUTREACH  # noqa: E402

COLOURS = {OUTREACH: "#2f6db5", HOLDOUT: "#c8702a"}
SIZE = (7.5, 3.6)


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _figure(title: str) -> tuple[Figure, plt.Axes]:
    figure, axes = plt.subplots(figsize=SIZE)
    axes.set_title(title, loc="left", fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _days_axis(axes: plt.Axes, days: pd.Series) -> None:
    """Dates as days; a single day gets a week around it instead of hours."""
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
    if days.nunique() == 1:
        day = days.iloc[0]
        axes.set_xlim(day - pd.Timedelta(days=3), day + pd.Timedelta(days=3))
        axes.xaxis.set_major_locator(mdates.DayLocator())


def _empty(title: str, why: str) -> bytes:
    figure, axes = _figure(title)
    axes.axis("off")
    axes.text(0.5, 0.5, why, ha="center", va="center", fontsize=10, color="#555",
              wrap=True, transform=axes.transAxes)  # fmt: skip
    return png(figure)


def _money(currency: str) -> FuncFormatter:
    def label(value: float, _pos: int) -> str:
        for size, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:.1f}{suffix}"
        return f"{value:.0f}"

    return FuncFormatter(lambda v, p: f"{label(v, p)} {currency}")


def dso(frame: pd.DataFrame, currency: str) -> bytes:
    title = "Days sales outstanding"
    data = frame.dropna(subset=["dso"])
    if data.empty:
        return _empty(title, "No receivables recorded yet: run the daily flow.")
    figure, axes = _figure(title)
    days = pd.to_datetime(data["as_of"])
    axes.plot(days, data["dso"], marker="o", color=COLOURS[OUTREACH])
    axes.set_ylabel("days")
    axes.set_ylim(bottom=0)
    _days_axis(axes, days)
    figure.autofmt_xdate()
    axes.annotate(f"{data['dso'].iloc[-1]:.0f} days", (pd.to_datetime(data["as_of"]).iloc[-1],
                  data["dso"].iloc[-1]), textcoords="offset points", xytext=(4, 6))  # fmt: skip
    axes.set_xlabel(f"receivables / sales of the last 90 days x 90, in {currency}")
    return png(figure)


def aging(table: pd.DataFrame, currency: str) -> bytes:
    title = "Open amount by days overdue"
    if table.empty:
        return _empty(title, "No receivables recorded yet: run the daily flow.")
    figure, axes = _figure(title)
    days = pd.to_datetime(pd.Series(table.index))
    colours = plt.get_cmap("RdYlGn_r")([i / max(len(table.columns) - 1, 1)
                                         for i in range(len(table.columns))])  # fmt: skip
    if len(table) == 1:
        bottom = 0.0
        for column, colour in zip(table.columns, colours, strict=True):
            value = float(table[column].iloc[0])
            axes.bar([days.iloc[0]], [value], bottom=bottom, color=colour, label=column, width=0.6)
            bottom += value
    else:
        axes.stackplot(days, *[table[c].to_numpy() for c in table.columns], labels=table.columns,
                       colors=colours)  # fmt: skip
    axes.yaxis.set_major_formatter(_money(currency))
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _days_axis(axes, days)
    figure.autofmt_xdate()
    return png(figure)


def by_group(frame: pd.DataFrame, x: str, y: str, title: str, empty: str) -> bytes:
    """One line per group (outreach, holdout) over periods, as shares."""
    data = frame.dropna(subset=[y])
    if data.empty:
        return _empty(title, empty)
    figure, axes = _figure(title)
    for group, part in data.groupby("group"):
        axes.plot(part[x].astype(str), part[y], marker="o", label=group,
                  color=COLOURS.get(str(group)))  # fmt: skip
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylim(0, 1.05)
    axes.legend(frameon=False)
    return png(figure)


def rate(frame: pd.DataFrame, x: str, title: str, empty: str) -> bytes:
    if frame.empty:
        return _empty(title, empty)
    figure, axes = _figure(title)
    bars = axes.bar(frame[x].astype(str), frame["rate"], color=COLOURS[OUTREACH])
    pairs = zip(frame["kept"], frame["promises"], strict=True)
    axes.bar_label(bars, labels=[f"{k}/{n}" for k, n in pairs], fontsize=8)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylim(0, 1.1)
    return png(figure)


def medians(frame: pd.DataFrame, key: str, title: str, empty: str) -> bytes:
    """Median days per category (cadence path, channel mix), the cases behind each bar."""
    if frame.empty:
        return _empty(title, empty)
    figure, axes = plt.subplots(figsize=(SIZE[0], 0.5 + 0.42 * len(frame)))
    axes.set_title(title, loc="left", fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    labels = frame[key].astype(str).str.slice(0, 60)
    bars = axes.barh(labels[::-1], frame["median"][::-1], color=COLOURS[OUTREACH])
    pairs = zip(frame["median"][::-1], frame["cases"][::-1], strict=True)
    axes.bar_label(bars, labels=[f"{m:.0f} d ({n})" for m, n in pairs], fontsize=8)
    axes.set_xlabel("median days from the first touch to payment (cases)")
    return png(figure)


def distribution(frame: pd.DataFrame, column: str, title: str, empty: str) -> bytes:
    """Box plots of `column` for each group present."""
    groups = [g for g in (OUTREACH, HOLDOUT) if (frame["group"] == g).any()] if len(frame) else []
    if not groups:
        return _empty(title, empty)
    figure, axes = _figure(title)
    values = [frame.loc[frame["group"] == g, column].dropna().to_numpy() for g in groups]
    parts = axes.boxplot(values, tick_labels=[f"{g} ({len(v)})" for g, v in zip(groups, values,
                         strict=True)], patch_artist=True, vert=False)  # fmt: skip
    for patch, group in zip(parts["boxes"], groups, strict=True):
        patch.set_facecolor(COLOURS[group])
        patch.set_alpha(0.6)
    axes.set_xlabel("days")
    return png(figure)


def bars(counts: pd.Series, title: str, empty: str) -> bytes:
    """A plain bar chart of counts (run artifacts: touches by channel, outcomes...)."""
    if counts.empty or counts.sum() == 0:
        return _empty(title, empty)
    figure, axes = _figure(title)
    drawn = axes.bar(counts.index.astype(str), counts.to_numpy(), color=COLOURS[OUTREACH])
    axes.bar_label(drawn, fontsize=8)
    return png(figure)


def stacked(table: pd.DataFrame, title: str, empty: str) -> bytes:
    """Rows as bars, columns stacked (run artifacts: delivery outcome per channel)."""
    if table.empty or table.to_numpy().sum() == 0:
        return _empty(title, empty)
    figure, axes = _figure(title)
    table.plot.bar(stacked=True, ax=axes, rot=0, colormap="tab10")
    axes.legend(frameon=False, fontsize=8)
    return png(figure)
