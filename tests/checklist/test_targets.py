from decimal import Decimal as D

import pytest

from checklist.targets import convert, format_number, meets_target, parse_unit


@pytest.mark.parametrize(
    ("op", "target", "t_unit", "actual", "a_unit", "expected"),
    [
        ("<", "200", "ms", "150", "ms", True),
        ("<", "200", "ms", "250", "ms", False),
        ("<", "200", "ms", "0.25", "s", False),
        ("<", "200", "ms", "0.15", "s", True),
        ("<", "1", "TB/month", "900", "GB/month", True),
        ("<", "1", "TB/month", "1100", "GB/month", False),
        (">=", "72000", "events/sec", "72000", "events/s", True),
        (">", "50000", "rows/sec", "50000", "rows/sec", False),
        ("<=", "0", "queries", "0", "queries", True),
        ("<=", "0", "queries", "1", "queries", False),
        ("<", "1", "%", "0.5", "%", True),
        ("=", "3", "", "3", "", True),
        ("<", "500", "KB", "0.4", "MB", True),
        ("<", "3", "min", "200", "s", False),
        ("<", "1000", "messages", "5", "msgs", True),
        ("<", "5", "%/hour", "3", "%/hour", True),
    ],
)
def test_meets_target_compares_in_the_target_unit(op, target, t_unit, actual, a_unit, expected):
    assert (
        meets_target(
            op=op,
            target_value=D(target),
            target_unit=t_unit,
            actual_value=D(actual),
            actual_unit=a_unit,
        )
        is expected
    )


def test_meets_target_unknown_when_units_do_not_convert():
    assert (
        meets_target(
            op=">=",
            target_value=D(72000),
            target_unit="events/sec",
            actual_value=D(80000),
            actual_unit="rows/sec",
        )
        is None
    )


@pytest.mark.parametrize("missing", ["op", "target", "actual"])
def test_meets_target_unknown_when_nothing_measured(missing):
    kwargs = dict(op="<", target_value=D(1), target_unit="s", actual_value=D(2), actual_unit="s")
    kwargs[{"op": "op", "target": "target_value", "actual": "actual_value"}[missing]] = (
        "" if missing == "op" else None
    )
    assert meets_target(**kwargs) is None


def test_actual_without_unit_is_read_in_the_target_unit():
    assert meets_target(
        op="<", target_value=D(200), target_unit="ms", actual_value=D(150), actual_unit=""
    )


def test_convert_refuses_a_bare_number_against_a_unit():
    assert convert(D(5), "", "ms") is None
    assert convert(D(5), "ms", "") is None
    assert convert(D(5), "%", "") == D(5)


def test_parse_unit_none_for_gibberish_and_blank():
    assert parse_unit("") is None
    assert parse_unit("florps per zorp") is None
    assert parse_unit("ms") is not None


def test_format_number_writes_like_a_person():
    assert format_number(D("72000.000000")) == "72,000"
    assert format_number(D("0.010000")) == "0.01"
    assert format_number(None) == ""
