import json

import pytest

from checklist.importers import parse_checklist
from fixtures.bench import Figure, measure, write
from fixtures.benchdata import Shape, checklist_markdown


def test_bench_checklist_is_reproducible_and_imports_cleanly():
    first = checklist_markdown(Shape("v1.0.0", 300, 20, 10))
    assert first == checklist_markdown(Shape("v1.0.0", 300, 20, 10))
    parsed = parse_checklist(first, source_name="bench.md")
    assert len(parsed.risks) == 20 and len(parsed.action_items) == 10
    assert len(parsed.signoffs) == 8


@pytest.mark.django_db
def test_bench_import_has_the_requested_size():
    from checklist.models import Item
    from signoffs.documents import release_import

    release = release_import(text=checklist_markdown(Shape("v1.0.0", 500)), source_name="bench.md")
    assert 490 <= Item.objects.filter(release=release).count() <= 510


@pytest.mark.django_db
def test_measure_counts_queries_and_runs():
    from checklist.models import Release

    figure = measure("count", lambda: list(Release.objects.all()), runs=3, memory=True)
    assert figure.queries == 1 and len(figure.runs) == 3 and figure.peak_mb is not None


def test_write_replaces_the_table_between_markers(tmp_path):
    md = tmp_path / "performance.md"
    md.write_text("# Performance\n\nprose stays\n")
    result = {
        "machine": {"python": "3.11", "platform": "x", "cpus": 2, "database": "sqlite"},
        "date": "2026-11-29T09:00:00+00:00",
        "figures": [Figure("page", [0.1, 0.2, 0.3], queries=7).as_dict()],
    }
    write(result, tmp_path / "performance.json", md)
    write(result, tmp_path / "performance.json", md)
    text = md.read_text()
    assert text.count("<!-- bench:start -->") == 1 and "prose stays" in text
    assert "| page | 0.2 | 0.1–0.3 | 7 |" in text
    assert json.loads((tmp_path / "performance.json").read_text())["figures"][0]["queries"] == 7
