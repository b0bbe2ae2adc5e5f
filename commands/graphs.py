"""Metric graphs for a thread: one batched ``get_metric_data`` per graph, drawn with matplotlib.

A :class:`GraphSpec` says what to draw: panels of series, each panel with an optional threshold
line, and an optional marker (the alarm's state change).  :func:`build` fetches every series of
a graph in one ``get_metric_data`` call and draws a small PNG (Agg backend, no display) sized
for a phone, with alt text that states the numbers.  No data at all → no image (``None``).

Which graphs: an alarm triage draws the alarm's own metric against its threshold; a runbook
draws the key metrics its area declares (``graph=`` in ``commands/runbooks/<area>/__init__.py``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import CheckError

if TYPE_CHECKING:
    from .alarm import Alarm
    from .aws import AwsCaller
    from .context import CheckContext

logger = logging.getLogger(__name__)

WIDTH_IN, PANEL_IN, DPI = 7.0, 2.2, 100
MAX_BYTES = 150 * 1024
THRESHOLD_COLOUR = "#d62728"  # the one red on the chart: the threshold line
MARKER_COLOUR = "#7f7f7f"
SERIES_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


@dataclass(frozen=True)
class Series:
    label: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str = "Average"


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[Series, ...]
    threshold: float | None = None
    threshold_label: str = "threshold"
    unit: str = ""


@dataclass(frozen=True)
class GraphSpec:
    key: str  # a file-name-safe id: "db", "alarm-<name>"
    title: str
    panels: tuple[Panel, ...]
    marker: datetime | None = None
    marker_label: str = ""


@dataclass
class Points:
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class Graph:
    spec: GraphSpec
    png: bytes
    alt_text: str
    size: tuple[int, int]
    data: dict[str, Points]
    # pixel row (from the top) of each panel's threshold line, for whoever checks the image
    threshold_rows: dict[int, float] = field(default_factory=dict)
    plot_columns: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"omni-{self.spec.key}.png"


# -- what to draw --------------------------------------------------------------------------
def _sum_like(metric: str) -> bool:
    return any(word in metric for word in ("Count", "Requests", "Errors", "Bytes"))


def alarm_graph(alarm: Alarm) -> GraphSpec | None:
    """The alarm's own metric against its threshold, with the state change marked."""
    if not (alarm.namespace and alarm.metric):
        return None
    stat = alarm.statistic or ("Sum" if _sum_like(alarm.metric) else "Average")
    series = Series(alarm.metric, alarm.namespace, alarm.metric, dict(alarm.dimensions), stat)
    panel = Panel(
        f"{alarm.metric} ({stat})",
        (series,),
        alarm.threshold,
        f"threshold {alarm.threshold:g}" if alarm.threshold is not None else "threshold",
    )
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in alarm.name or alarm.metric)
    return GraphSpec(
        f"alarm-{safe[:60]}",
        alarm.name or alarm.metric,
        (panel,),
        marker=parse_time(alarm.changed_at),
        marker_label=f"{alarm.state or 'state'} at",
    )


def runbook_graph(runbook: str, ctx: CheckContext) -> GraphSpec | None:
    """The key metrics of a runbook, as its area declares them (None for areas without)."""
    from . import areas

    declared = areas.get(runbook)
    if declared is None or declared.graph is None:
        return None
    try:
        return declared.graph(ctx)
    except CheckError as exc:  # the resource is missing: the findings already say so
        logger.info("no %s graph: %s", runbook, exc)
        return None


# -- fetching ----------------------------------------------------------------------------------
def fetch(
    aws: AwsCaller, spec: GraphSpec, start: datetime, end: datetime, period: int = 60
) -> dict[str, Points]:
    """Every series of the graph in one ``get_metric_data`` call (pages followed, if any)."""
    queries, ids = [], {}
    for p, panel in enumerate(spec.panels):
        for s, series in enumerate(panel.series):
            qid = f"p{p}s{s}"
            ids[qid] = series
            queries.append(
                {
                    "Id": qid,
                    "Label": series.label,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": series.namespace,
                            "MetricName": series.metric,
                            "Dimensions": [
                                {"Name": k, "Value": v} for k, v in series.dimensions.items()
                            ],
                        },
                        "Period": period,
                        "Stat": series.stat,
                    },
                }
            )
    points = {qid: Points() for qid in ids}
    params: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    while True:
        response = aws.call("cloudwatch", "get_metric_data", **params)
        for result in response.get("MetricDataResults", []):
            target = points.get(result["Id"])
            if target is not None:
                target.times.extend(result.get("Timestamps", []))
                target.values.extend(float(v) for v in result.get("Values", []))
        token = response.get("NextToken")
        if not token:
            break
        params["NextToken"] = token
    for series_points in points.values():  # not every implementation honours ScanBy
        pairs = sorted(zip(series_points.times, series_points.values, strict=True))
        series_points.times = [t for t, _ in pairs]
        series_points.values = [v for _, v in pairs]
    return points


# -- drawing -----------------------------------------------------------------------------------
def draw(
    spec: GraphSpec, points: dict[str, Points], start: datetime, end: datetime
) -> Graph | None:
    """A PNG of the graph, or None when no series has a single point."""
    if not any(p.values for p in points.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    n = len(spec.panels)
    fig = Figure(figsize=(WIDTH_IN, PANEL_IN * n), dpi=DPI)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    alt: list[str] = []
    minutes = round((end - start).total_seconds() / 60)
    for p, (ax, panel) in enumerate(zip(axes, spec.panels, strict=True)):
        described: list[str] = []
        for s, series in enumerate(panel.series):
            data = points[f"p{p}s{s}"]
            if data.values:
                ax.plot(
                    data.times,
                    data.values,
                    color=SERIES_COLOURS[s % len(SERIES_COLOURS)],
                    linewidth=1.6,
                    label=series.label,
                )
                described.append(
                    f"{series.label} now {_fmt(data.values[-1])}, min {_fmt(min(data.values))}, "
                    f"max {_fmt(max(data.values))}"
                )
            else:
                described.append(f"{series.label} no data")
        if panel.threshold is not None:
            ax.axhline(
                panel.threshold,
                color=THRESHOLD_COLOUR,
                linestyle="-",
                linewidth=1.4,
                label=panel.threshold_label,
            )
            described.append(f"{panel.threshold_label} ({_fmt(panel.threshold)})")
            low, high = ax.get_ylim()
            ax.set_ylim(min(low, panel.threshold * 0.9), max(high, panel.threshold * 1.1))
        if spec.marker is not None and start <= spec.marker <= end:
            ax.axvline(spec.marker, color=MARKER_COLOUR, linestyle="--", linewidth=1.2)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        if (len(panel.series) > 1 or panel.threshold is not None) and any(
            ax.get_legend_handles_labels()
        ):
            ax.legend(fontsize=7, loc="upper left")
        alt.append(f"{panel.title}: " + "; ".join(described))
    axes[-1].set_xlim(start, end)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    fig.suptitle(f"{spec.title}, last {minutes} min (UTC)", fontsize=11)
    if spec.marker is not None and start <= spec.marker <= end:
        alt.append(f"{spec.marker_label} {spec.marker:%H:%M} UTC (dashed line)")
    fig.tight_layout()
    fig.canvas.draw()
    height = fig.bbox.height
    rows: dict[int, float] = {}
    columns: dict[int, tuple[float, float]] = {}
    for p, (ax, panel) in enumerate(zip(axes, spec.panels, strict=True)):
        x0, x1 = ax.bbox.x0, ax.bbox.x1
        columns[p] = (float(x0), float(x1))
        if panel.threshold is not None:
            x = mdates.date2num(start)  # type: ignore[no-untyped-call]
            _, y = ax.transData.transform((x, panel.threshold))
            rows[p] = float(height - y)
    png = _png(fig)
    size = (round(fig.bbox.width), round(height))
    text = f"{spec.title}, last {minutes} minutes. " + ". ".join(alt)
    return Graph(spec, png, text[:1000], size, points, rows, columns)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"optimize": True})
    png = buffer.getvalue()
    if len(png) > MAX_BYTES:  # never seen with these charts; keep the promise anyway
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI * 0.7, pil_kwargs={"optimize": True})
        png = buffer.getvalue()
    return png


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def parse_time(text: str | None) -> datetime | None:
    """CloudWatch's ``2024-05-01T12:00:00.000+0000`` and ISO 8601 alike."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build(
    spec: GraphSpec, aws: AwsCaller, window_minutes: int, now: datetime | None = None
) -> Graph | None:
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(minutes=window_minutes)
    return draw(spec, fetch(aws, spec, start, end), start, end)
