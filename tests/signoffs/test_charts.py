import datetime
import re
import xml.etree.ElementTree as ET

import pytest

from risks.choices import Level
from signoffs.charts import burndown_chart, heat_map, progress_bar, trend_chart
from signoffs.dashboard import LEVELS_DOWN, Burndown, DayPoint, HeatCell, HeatMap, Trend

SVG = "{http://www.w3.org/2000/svg}"
DAY = datetime.date(2026, 11, 2)


def _parse(svg: str) -> ET.Element:
    """Well-formed XML or the test fails: a chart must parse as SVG."""
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def _heat(counts: dict[tuple[str, str], int]) -> HeatMap:
    return HeatMap(
        rows=[
            [HeatCell(i, p, counts.get((i, p), 0), counts.get((i, p), 0)) for p in LEVELS_DOWN]
            for i in LEVELS_DOWN
        ]
    )


def _days(values: list[tuple[int, int, int, int]]) -> list[DayPoint]:
    return [DayPoint(DAY + datetime.timedelta(days=n), *value) for n, value in enumerate(values)]


# ---------------------------------------------------------------- progress bar
@pytest.mark.parametrize(("percent", "width"), [(0, "0"), (50, "45"), (100, "90"), (150, "90")])
def test_progress_bar_fills_in_proportion_when_given_a_percent(percent, width):
    root = _parse(progress_bar(percent, label="Testing"))
    fill = root.findall(f"{SVG}rect")[1]
    assert fill.get("width") == width
    assert root.find(f"{SVG}text").text == f"{min(percent, 100)}%"


def test_progress_bar_is_green_only_when_complete():
    assert "#15803d" in progress_bar(100, label="x")
    assert "#15803d" not in progress_bar(99, label="x")


def test_progress_bar_escapes_the_label_when_it_holds_markup():
    svg = progress_bar(10, label='<script>alert(1)</script>" onload="x')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = _parse(svg)
    assert root.get("onload") is None
    assert root.find(f"{SVG}title").text.startswith("<script>alert(1)</script>")


# ---------------------------------------------------------------- heat map
def test_heat_map_writes_each_cell_count_and_links_to_the_filtered_list():
    heat = _heat({(Level.HIGH, Level.MEDIUM): 3, (Level.MEDIUM, Level.LOW): 1})
    svg = heat_map(heat, url=lambda i, p: f"/risks/?impact__exact={i}&probability__exact={p}")
    root = _parse(svg)
    cells = root.findall(f"{SVG}a")
    assert len(cells) == 9
    by_cell = {(a.get("data-impact"), a.get("data-probability")): a for a in cells}
    high_medium = by_cell[("HIGH", "MEDIUM")]
    assert high_medium.find(f"{SVG}text").text == "3"
    assert high_medium.get("href") == "/risks/?impact__exact=HIGH&probability__exact=MEDIUM"
    assert "&amp;probability__exact=MEDIUM" in svg  # escaped in the markup
    assert by_cell[("MEDIUM", "LOW")].find(f"{SVG}text").text == "1"
    assert by_cell[("LOW", "LOW")].find(f"{SVG}text").text == "0"
    assert "5 risks" not in svg and 'aria-label="Risk heat map, 4 risks"' in svg


def test_heat_map_colours_a_high_score_red_and_an_empty_cell_blank():
    heat = _heat({(Level.HIGH, Level.HIGH): 1, (Level.LOW, Level.LOW): 1})
    root = _parse(heat_map(heat, url=lambda i, p: "#"))
    fills = {
        (a.get("data-impact"), a.get("data-probability")): a.find(f"{SVG}rect").get("fill")
        for a in root.findall(f"{SVG}a")
    }
    assert fills[("HIGH", "HIGH")] == "#fca5a5"
    assert fills[("LOW", "LOW")] == "#86efac"
    assert fills[("MEDIUM", "MEDIUM")] == "#f9fafb"


def test_heat_map_escapes_a_link_when_it_holds_quotes():
    svg = heat_map(_heat({}), url=lambda i, p: '"><script>x</script>')
    assert "<script>" not in svg
    _parse(svg)


# ---------------------------------------------------------------- trend and burndown
def _points(root: ET.Element, index: int) -> list[tuple[float, float]]:
    line = root.findall(f"{SVG}polyline")[index]
    return [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]


def test_trend_chart_draws_one_point_per_day_rising_with_completion():
    trend = Trend(days=_days([(0, 4, 5, 5), (2, 4, 5, 5), (4, 4, 0, 5)]))
    svg = trend_chart(trend)
    root = _parse(svg)
    complete = _points(root, 1)
    assert len(complete) == 3
    assert complete[0][1] > complete[1][1] > complete[2][1]  # higher on screen = more done
    assert complete[2][1] == pytest.approx(14)  # 4 of 4: the top of the plot
    assert "4 of 4 items complete on 2026-11-04" in svg
    assert "2026-11-02" in svg


def test_trend_chart_says_so_when_there_is_no_history():
    assert "No history yet." in trend_chart(Trend(days=[]))
    assert "No history yet." in burndown_chart(
        Burndown(days=[], end=DAY, end_known=False, start_points=0), today=DAY
    )


def test_burndown_chart_draws_the_ideal_line_to_zero_at_the_go_no_go_date():
    days = _days([(0, 3, 10, 10), (0, 3, 6, 10)])
    end = DAY + datetime.timedelta(days=4)
    svg = burndown_chart(Burndown(days=days, end=end, end_known=True, start_points=10), today=DAY)
    root = _parse(svg)
    ideal, actual = _points(root, 0), _points(root, 1)
    assert ideal[0][1] == pytest.approx(14)  # 10 points: the top
    assert ideal[1] == (pytest.approx(508), pytest.approx(166))  # zero, at the right edge
    assert len(actual) == 2
    assert actual[1][0] == pytest.approx(44 + 464 / 4)
    assert "go/no-go 2026-11-06" in svg
    assert "2026-11-06" in [t.text for t in root.findall(f"{SVG}text")]


def test_burndown_chart_says_the_date_is_not_set_when_unknown():
    days = _days([(0, 1, 5, 5)])
    svg = burndown_chart(Burndown(days=days, end=DAY, end_known=False, start_points=5), today=DAY)
    assert "go/no-go date not set" in svg
    _parse(svg)
    assert re.search(r"<circle ", svg)  # a single day is still visible
