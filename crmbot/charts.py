"""PNG charts of the manager's views, drawn with matplotlib's Agg backend (no display).

Pure: report views in, PNG bytes out; no Slack, no database. Figures are built with the
object API (Figure + FigureCanvasAgg), never pyplot, so listener threads can draw at once.
Sized for Slack's inline preview (about 360 px high): large type, few labels, one idea each.
Money is charted per currency, one panel each; currencies are never stacked or summed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from crmbot.domain import Money
from crmbot.reporting import ActivityReport, PipelineReport

DPI = 130
WIDTH = 7.0  # inches (910 px): type stays legible when Slack shrinks the preview to ~480 px
MAX_PANELS = 3
MAX_REPS = 10
AMOUNT = "#a9c8e8"  # light: the whole amount
WEIGHTED = "#1f4e79"  # dark: what probability makes of it
KIND_COLORS = ("#1f4e79", "#2e8b57", "#e69f00", "#8c6bb1", "#7f7f7f")
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
STYLE: Any = {
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.titleweight": "bold",
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 13,
    "legend.fontsize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# Set once, for the whole process: rc_context per chart would race between listener threads.
matplotlib.use("Agg")
matplotlib.rcParams.update(STYLE)


@dataclass(frozen=True)
class ChartFile:
    filename: str
    title: str
    png: bytes
    alt: str  # what the picture shows, for screen readers


def short_money(amount: Decimal | float, currency: str) -> str:
    """$1.2M, €350k, CHF 900: short enough for a bar label."""
    value = float(amount)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            number = f"{value / limit:.1f}".removesuffix(".0") + suffix
            break
    else:
        number = f"{value:,.0f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{currency} {number}"


def _amount(values: Sequence[Money], currency: str) -> float:
    return float(sum((m.amount for m in values if m.currency == currency), Decimal(0)))


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _figure(height: float) -> Figure:
    return Figure(figsize=(WIDTH, height), layout="constrained")


def _money_axis(ax: Axes, currency: str, *, axis: str) -> None:
    formatter = FuncFormatter(lambda v, _pos: short_money(v, currency))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def _currencies(totals: Sequence[Money]) -> tuple[list[str], str]:
    """The currencies to draw (largest first, at most MAX_PANELS) and a note on the rest."""
    ranked = sorted(totals, key=lambda m: (-m.amount, m.currency))
    shown = [m.currency for m in ranked[:MAX_PANELS]]
    rest = [m.currency for m in ranked[MAX_PANELS:]]
    return shown, (f"not drawn: {', '.join(rest)}" if rest else "")


# --- pipeline by stage ------------------------------------------------------------------


def pipeline_chart(report: PipelineReport) -> ChartFile | None:
    """Horizontal bars per stage, top to bottom like a funnel: amount, weighted inside it."""
    currencies, note = _currencies(report.totals)
    if not currencies:
        return None
    figure = _figure(1.5 + 0.5 * max(len(report.stages), 2))
    axes = figure.subplots(1, len(currencies), sharey=True, squeeze=False)[0]
    labels = [f"{row.stage}\n{_deals(row.count)} · {row.probability} %" for row in report.stages]
    positions = list(range(len(report.stages)))[::-1]
    for ax, currency in zip(axes, currencies, strict=True):
        full = [_amount(row.amounts, currency) for row in report.stages]
        weighted = [_amount(row.weighted, currency) for row in report.stages]
        ax.barh(positions, full, color=AMOUNT, height=0.7, label="amount")
        ax.barh(positions, weighted, color=WEIGHTED, height=0.42, label="weighted")
        top = max(full) or 1.0
        for y, value, part in zip(positions, full, weighted, strict=True):
            if value:
                ax.text(
                    value + top * 0.02,
                    y,
                    f"{short_money(value, currency)}\n({short_money(part, currency)})",
                    va="center",
                    fontsize=11,
                )
        ax.set_xlim(0, top * 1.32)
        _money_axis(ax, currency, axis="x")
        ax.set_title(currency if len(currencies) > 1 else f"Open pipeline ({currency})")
        ax.tick_params(axis="x", labelsize=10)
    axes[0].set_yticks(positions, labels)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
                  frameon=False)  # fmt: skip
    whose = "Team" if report.owner_id is None else "One rep's"
    figure.suptitle(f"{whose} pipeline by stage — amount (weighted)", fontsize=15)
    if note:
        figure.supxlabel(note, fontsize=11)
    alt = "; ".join(
        f"{row.stage}: {row.count} deals, "
        + ", ".join(short_money(m.amount, m.currency) for m in row.amounts)
        for row in report.stages
    )
    return ChartFile("pipeline.png", "Pipeline by stage", _png(figure), alt)


# --- forecast by month ----------------------------------------------------------------------


def forecast_chart(report: PipelineReport) -> ChartFile | None:
    """Bars per expected close month (this quarter and next): amount, weighted in front."""
    present = [m for month in report.forecast for m in month.amounts]
    totals: dict[str, Decimal] = {}
    for money in present:
        totals[money.currency] = totals.get(money.currency, Decimal(0)) + money.amount
    currencies, note = _currencies([Money(v, c) for c, v in totals.items()])
    if not currencies:
        return None
    side_by_side = len(currencies) <= 2  # three panels side by side would crowd the months
    figure = _figure(4.2 if side_by_side else 1.4 + 2.4 * len(currencies))
    grid = (1, len(currencies)) if side_by_side else (len(currencies), 1)
    axes = figure.subplots(*grid, squeeze=False).flatten()
    months = [m.month.strftime("%b\n%Y" if side_by_side else "%b %Y") for m in report.forecast]
    xs = list(range(len(months)))
    for ax, currency in zip(axes, currencies, strict=True):
        full = [_amount(m.amounts, currency) for m in report.forecast]
        weighted = [_amount(m.weighted, currency) for m in report.forecast]
        ax.bar(xs, full, color=AMOUNT, width=0.72, label="amount")
        ax.bar(xs, weighted, color=WEIGHTED, width=0.45, label="weighted")
        top = max(full) or 1.0
        for x, part in zip(xs, weighted, strict=True):
            if part:
                ax.text(x, part + top * 0.03, short_money(part, currency), ha="center")
        ax.set_ylim(0, top * 1.18)
        ax.axvline(2.5, color="#999999", linewidth=1, linestyle=":")
        _money_axis(ax, currency, axis="y")
        ax.set_title(currency, loc="left")
        ax.set_xticks(xs, months, fontsize=11)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
                  frameon=False)  # fmt: skip
    figure.suptitle("Forecast by expected close month\n(this quarter ⋮ next quarter)", fontsize=14)
    if note:
        figure.supxlabel(note, fontsize=11)
    alt = "; ".join(
        f"{m.month:%b %Y}: weighted "
        + (", ".join(short_money(w.amount, w.currency) for w in m.weighted) or "0")
        for m in report.forecast
    )
    return ChartFile("forecast.png", "Forecast by close month", _png(figure), alt)


# --- activity per rep -----------------------------------------------------------------------


def activity_chart(report: ActivityReport) -> ChartFile | None:
    """Stacked bars per rep by kind of interaction; a tick marks the period before."""
    reps = [r for r in report.reps if r.interactions.now or r.interactions.before][:MAX_REPS]
    if not reps:
        return None
    figure = _figure(2.2 + 0.38 * len(reps))
    ax = figure.subplots()
    positions = list(range(len(reps)))[::-1]
    left = [0.0] * len(reps)
    kinds = [k for k, _ in reps[0].by_kind]
    for color, kind in zip(KIND_COLORS, kinds, strict=False):
        values = [float(dict(r.by_kind).get(kind, 0)) for r in reps]
        if not any(values):
            continue
        ax.barh(positions, values, left=left, color=color, height=0.6, label=kind.value + "s")
        left = [a + b for a, b in zip(left, values, strict=True)]
    before = [r.interactions.before for r in reps]
    ax.scatter(
        before,
        positions,
        marker="|",
        s=900,
        color="#c0392b",
        linewidths=3,
        zorder=3,
        label="period before",
    )
    top = max([*left, *before, 1])
    for y, total in zip(positions, left, strict=True):
        ax.text(total + top * 0.015, y, f"{int(total)}", va="center", fontweight="bold")
    ax.set_xlim(0, top * 1.12)
    ax.set_ylim(-0.7, len(reps) - 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(positions, [r.name[:20] for r in reps])
    ax.set_xlabel(f"interactions, last {_span(report.period)}")
    figure.legend(loc="outside lower center", frameon=False, ncols=3, fontsize=11)
    whose = "Team" if report.owner_id is None else "Rep"
    figure.suptitle(f"{whose} activity per rep", fontsize=15)
    alt = "; ".join(
        f"{r.name}: {r.interactions.now} interactions (before: {r.interactions.before})"
        for r in reps
    )
    return ChartFile("activity.png", "Activity per rep", _png(figure), alt)


def _deals(count: int) -> str:
    return f"{count} deal{'s' if count != 1 else ''}"


def _span(period: str) -> str:
    return {"week": "7 days", "month": "30 days", "quarter": "91 days"}.get(period, period)


def for_pipeline(report: PipelineReport) -> list[ChartFile]:
    """The charts that go with `/crm pipeline`."""
    return [c for c in (pipeline_chart(report), forecast_chart(report)) if c is not None]


def for_report(report: ActivityReport) -> list[ChartFile]:
    """The charts that go with `/crm report`."""
    return [c for c in (activity_chart(report),) if c is not None]
