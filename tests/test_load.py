"""The load test's own tooling (fixtures/loadreport.py, fixtures/loadrun.py): the report never
touches the benchmark block, it names the pages that miss a goal, and the write check catches a
lost save. The locust scenario itself runs only in `make load` (its own virtualenv)."""

import csv
import json
from decimal import Decimal

import pytest

from fixtures.loadreport import report
from fixtures.loadrun import verify
from tests.factories import ItemFactory

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
).split(",")


def _phase(outdir, label, users, pages):
    """pages: name -> (p95, p99, {status: count})."""
    with open(outdir / f"{label}_stats.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, HEADER)
        writer.writeheader()
        for name, (p95, p99, statuses) in pages.items():
            row = dict.fromkeys(HEADER, "0")
            row.update({"Type": "GET", "Name": name, "50%": "40", "95%": p95, "99%": p99})
            row["Request Count"] = str(sum(statuses.values()))
            writer.writerow(row)
        writer.writerow({**dict.fromkeys(HEADER, "0"), "Type": "", "Name": "Aggregated"})
    (outdir / f"{label}_meta.json").write_text(
        json.dumps({"users": users, "spawn_rate": 10, "seconds": 60})
    )
    (outdir / f"{label}_status.json").write_text(
        json.dumps(
            [
                {"page": n, "status": s, "count": c}
                for n, (_, _, statuses) in pages.items()
                for s, c in statuses.items()
            ]
        )
    )


@pytest.fixture
def outdir(tmp_path):
    out = tmp_path / "load"
    out.mkdir()
    _phase(
        out,
        "steady",
        100,
        {"dashboard": ("900", "1500", {"200": 50}), "item page": ("120", "300", {"200": 80})},
    )
    _phase(out, "stress", 500, {"dashboard": ("9000", "9000", {"200": 5, "429": 7, "500": 1})})
    (out / "verify.json").write_text(
        json.dumps({"attempted": 3, "acknowledged": 2, "checked": 2, "lost": []})
    )
    (out / "profiles.json").write_text("[]")
    (out / "server.json").write_text(
        json.dumps(
            {"workers": 3, "threads": 1, "worker_class": "sync", "rate_limit_per_minute": 100}
        )
    )
    return out


def test_load_report_keeps_the_bench_block_when_written_twice(outdir, tmp_path):
    md = tmp_path / "performance.md"
    bench = "<!-- bench:start -->\n| bench table |\n<!-- bench:end -->"
    md.write_text(f"# Performance\n\nprose\n\n{bench}\n\n## Later notes\n\nkept\n")
    report(outdir, tmp_path / "load.json", md)
    report(outdir, tmp_path / "load.json", md)
    text = md.read_text()
    assert bench in text
    assert text.count("## Load test") == 1 and text.count("<!-- load:start -->") == 1
    assert text.index("<!-- bench:end -->") < text.index("## Load test")
    assert "## Later notes\n\nkept" in text


def test_load_report_names_the_page_missing_the_goal_when_slow(outdir, tmp_path):
    result = report(outdir, tmp_path / "load.json", tmp_path / "performance.md")
    misses = result["goals"]["steady_100"]["misses"]
    assert [m["page"] for m in misses] == ["dashboard"]
    assert misses[0]["missed"] == ["p95 900 ms", "p99 1500 ms"]
    assert "dashboard: p95 900 ms, p99 1500 ms" in (tmp_path / "performance.md").read_text()


def test_load_report_fails_the_stress_goal_when_a_500_is_answered(outdir, tmp_path):
    stress = report(outdir, tmp_path / "load.json", tmp_path / "x.md")["goals"]["stress_500"]
    assert stress["met"] is False
    assert stress["server_errors"] == {"500": 1} and stress["shed"] == {"429": 7}


@pytest.mark.django_db
def test_load_verify_reports_a_lost_write_when_an_acknowledged_save_is_missing(tmp_path):
    item = ItemFactory(metric=True)
    item.actual_value = Decimal("12.5")
    item.save()
    log = tmp_path / "writes.json"
    log.write_text(
        json.dumps(
            {
                str(item.pk): [
                    {"value": 12.5, "acked": True},
                    {"value": 99.25, "acked": True},  # acknowledged but never stored
                ]
            }
        )
    )
    result = verify([str(log)], str(tmp_path / "verify.json"))
    assert result["acknowledged"] == 2
    assert {lost["why"] for lost in result["lost"]} == {"not in history", "current is 12.5"}


@pytest.mark.django_db
def test_load_verify_finds_nothing_lost_when_every_save_is_stored(tmp_path):
    item = ItemFactory(metric=True)
    for value in ("12.5", "30"):
        item.actual_value = Decimal(value)
        item.save()
    log = tmp_path / "writes.json"
    log.write_text(
        json.dumps(
            {
                str(item.pk): [
                    {"value": 12.5, "acked": True},
                    {"value": 30, "acked": True},
                    {"value": 45, "acked": False},  # refused (429): not written, not lost
                ]
            }
        )
    )
    assert verify([str(log)], str(tmp_path / "v.json"))["lost"] == []


def test_load_report_states_the_shedding_bound_when_the_server_had_one(outdir, tmp_path):
    server = {
        "workers": 3,
        "threads": 8,
        "worker_class": "gthread",
        "rate_limit_per_minute": 100,
        "shed_max_in_flight": 2,
        "shed_queue_timeout_ms": 1000,
        "shed_max_queue_age_ms": 2000,
    }
    (outdir / "server.json").write_text(json.dumps(server))
    md = tmp_path / "performance.md"
    report(outdir, tmp_path / "load.json", md)
    text = md.read_text()
    assert "gunicorn 3 workers × 8 threads (gthread), load shedding at 2 requests in flight" in text
    assert "(503 after 1000 ms without a slot)" in text
