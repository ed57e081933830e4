"""The dashboard's charts, drawn on the server as inline SVG: progress bars, the risk heat map,
the readiness trend and the story-point burndown. No script, no external file: the page shows
them as they are. Every piece of text in a chart goes through ``format_html`` (escaped for
XML as for HTML), so a risk title or a label cannot inject markup."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from risks.choices import Level

from .dashboard import LEVELS_DOWN, Burndown, HeatMap, Trend

GREEN, AMBER, RED, GREY, BLUE = "#15803d", "#d97706", "#b91c1c", "#9ca3af", "#2563eb"
FONT = "font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif"


def _n(value: float) -> str:
    """A coordinate, short: 12.5 → '12.5', 12.0 → '12'."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- progress bar
def progress_bar(percent: int, *, label: str) -> SafeString:
    """A horizontal bar filled to ``percent`` (0–100), green when complete, blue otherwise,
    with the figure written beside it; ``label`` names it for screen readers."""
    percent = max(0, min(100, int(percent)))
    colour = GREEN if percent == 100 else BLUE
    return format_html(
        '<svg class="chart progress-bar" viewBox="0 0 120 12" width="100%" height="14" '
        'role="img" aria-label="{}: {}%" preserveAspectRatio="xMinYMid meet">'
        "<title>{}: {}%</title>"
        '<rect x="0" y="2" width="90" height="8" rx="2" fill="#e5e7eb"/>'
        '<rect x="0" y="2" width="{}" height="8" rx="2" fill="{}"/>'
        '<text x="94" y="10" font-size="9" fill="#111827" style="{}">{}%</text></svg>',
        label,
        percent,
        label,
        percent,
        _n(0.9 * percent),
        colour,
        FONT,
        percent,
    )


# ---------------------------------------------------------------- heat map
def _heat_colour(score: int, count: int) -> str:
    if not count:
        return "#f9fafb"
    if score >= 6:
        return "#fca5a5"
    if score >= 3:
        return "#fcd34d"
    return "#86efac"


def heat_map(heat: HeatMap, *, url: Callable[[str, str], str]) -> SafeString:
    """Impact (rows, high at the top) × probability (columns, high at the left); each cell
    shows its number of risks and links to ``url(impact, probability)``, the risk list
    filtered to that cell."""
    cell, left, top = 60, 70, 36
    parts = []
    for r, impact in enumerate(LEVELS_DOWN):
        y = top + r * cell
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" font-size="11">{}</text>',
                left - 6,
                y + cell / 2 + 4,
                Level(impact).label,
            )
        )
        for c, probability in enumerate(LEVELS_DOWN):
            x = left + c * cell
            entry = heat.cell(impact, probability)
            title = (
                f"Impact {Level(impact).label} × probability {Level(probability).label}: "
                f"{entry.count} risk(s), {entry.open} open"
            )
            parts.append(
                format_html(
                    '<a href="{}" class="heat-cell" data-impact="{}" data-probability="{}">'
                    "<title>{}</title>"
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#fff" '
                    'stroke-width="2"/>'
                    '<text x="{}" y="{}" text-anchor="middle" font-size="18" '
                    'font-weight="bold" fill="#111827">{}</text></a>',
                    url(impact, probability),
                    impact,
                    probability,
                    title,
                    x,
                    y,
                    cell,
                    cell,
                    _heat_colour(entry.score, entry.count),
                    x + cell / 2,
                    y + cell / 2 + 6,
                    entry.count,
                )
            )
    for c, probability in enumerate(LEVELS_DOWN):
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>',
                left + c * cell + cell / 2,
                top - 8,
                Level(probability).label,
            )
        )
    width, height = left + 3 * cell + 4, top + 3 * cell + 20
    return format_html(
        '<svg class="chart heat-map" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="Risk heat map, {} risks" style="max-width:100%;{}">'
        '<text x="{}" y="10" text-anchor="middle" font-size="11" font-weight="bold">{}</text>'
        "{}"
        '<text x="12" y="{}" font-size="11" font-weight="bold" '
        'transform="rotate(-90 12 {})" text-anchor="middle">{}</text></svg>',
        width,
        height,
        width,
        height,
        heat.total,
        FONT,
        left + 1.5 * cell,
        "Probability →",
        mark_safe("".join(parts)),  # each part built with format_html above
        top + 1.5 * cell,
        top + 1.5 * cell,
        "Impact →",
    )


# ---------------------------------------------------------------- line charts
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 520, 200, 44, 12, 14, 34


def _scale(start: datetime.date, end: datetime.date, top: int):
    span = max((end - start).days, 1)
    top = max(top, 1)

    def x(day: datetime.date) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (day - start).days / span

    def y(value: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - value / top)

    return x, y


def _polyline(
    points: Sequence[tuple[float, float]], colour: str, *, dash: str = "", dots: bool = False
) -> SafeString:
    """A line through ``points``; with ``dots``, a mark on each (a single day stays visible)."""
    coords = " ".join(f"{_n(px)},{_n(py)}" for px, py in points)
    marks = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="2.5" fill="{}"/>',
        ((_n(px), _n(py), colour) for px, py in (points if dots else ())),
    )
    return format_html(
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>{}',
        coords,
        colour,
        format_html(' stroke-dasharray="{}"', dash) if dash else "",
        marks,
    )


def _axes(start: datetime.date, end: datetime.date, top: int, y) -> SafeString:
    bottom = H - PAD_B
    return format_html(
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#6b7280"/>'
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#6b7280"/>'
        '<text x="{lt}" y="{ty}" text-anchor="end" font-size="10">{top}</text>'
        '<text x="{lt}" y="{b}" text-anchor="end" font-size="10">0</text>'
        '<text x="{l}" y="{dy}" font-size="10">{start}</text>'
        '<text x="{r}" y="{dy}" text-anchor="end" font-size="10">{end}</text>',
        l=PAD_L,
        t=PAD_T,
        b=bottom,
        r=W - PAD_R,
        lt=PAD_L - 4,
        ty=_n(y(top) + 4),
        top=top,
        dy=bottom + 14,
        start=start.isoformat(),
        end=end.isoformat() if end != start else "",
    )


def _legend(entries: Sequence[tuple[str, str, str]]) -> SafeString:
    return format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"{}/>'
        '<text x="{}" y="{}" font-size="10">{}</text>',
        (
            (
                PAD_L + i * 170,
                H - 6,
                PAD_L + i * 170 + 18,
                H - 6,
                colour,
                format_html(' stroke-dasharray="{}"', dash) if dash else "",
                PAD_L + i * 170 + 22,
                H - 2,
                label,
            )
            for i, (label, colour, dash) in enumerate(entries)
        ),
    )


def _svg(css: str, label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart {}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'style="max-width:{}px;{}"><title>{}</title>{}</svg>',
        css,
        W,
        H,
        label,
        W,
        FONT,
        label,
        body,
    )


def trend_chart(trend: Trend) -> SafeString:
    """Items complete at the end of each day (solid) under the number of items counted
    (dashed), from the audit history."""
    if not trend.days:
        return format_html('<p class="chart-empty">{}</p>', "No history yet.")
    start, end = trend.days[0].day, trend.days[-1].day
    top = max(max(d.total for d in trend.days), 1)
    x, y = _scale(start, end, top)
    complete = [(x(d.day), y(d.complete)) for d in trend.days]
    total = [(x(d.day), y(d.total)) for d in trend.days]
    last = trend.days[-1]
    label = f"Readiness trend: {last.complete} of {last.total} items complete on {end}"
    body = format_html(
        "{}{}{}{}",
        _axes(start, end, top, y),
        _polyline(total, GREY, dash="4 3"),
        _polyline(complete, GREEN, dots=len(complete) <= 62),
        _legend((("Items complete", GREEN, ""), ("Items counted", GREY, "4 3"))),
    )
    return _svg("trend-chart", label, body)


def burndown_chart(chart: Burndown, *, today: datetime.date) -> SafeString:
    """Open story points per day (solid) against the ideal line (dashed) from the first day's
    points to zero at the go/no-go date; a vertical mark at today."""
    if not chart.days:
        return format_html('<p class="chart-empty">{}</p>', "No history yet.")
    start = chart.days[0].day
    end = max(chart.end, chart.days[-1].day)
    top = max(max(d.points_total for d in chart.days), chart.start_points, 1)
    x, y = _scale(start, end, top)
    actual = [(x(d.day), y(d.points_open)) for d in chart.days]
    ideal = [(x(start), y(chart.start_points)), (x(chart.end), y(0))]
    last = chart.days[-1]
    label = (
        f"Burndown: {last.points_open} of {last.points_total} story points open on "
        f"{last.day}; go/no-go {chart.end if chart.end_known else 'date not set'}"
    )
    today_x = x(min(max(today, start), end))
    body = format_html(
        '{}{}{}<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="2 2"/>'
        '<text x="{}" y="{}" font-size="10" fill="{}">{}</text>{}',
        _axes(start, end, top, y),
        _polyline(ideal, GREY, dash="4 3"),
        _polyline(actual, RED, dots=len(actual) <= 62),
        _n(today_x),
        PAD_T,
        _n(today_x),
        H - PAD_B,
        AMBER,
        _n(today_x + 3),
        PAD_T + 10,
        AMBER,
        "today",
        _legend((("Story points open", RED, ""), ("Ideal to go/no-go", GREY, "4 3"))),
    )
    return _svg("burndown-chart", label, body)
