"""Typed targets and measured actuals: unit conversion and the pass/fail rule.

Pass/fail is computed, never typed. Units convert through pint (GB/month against TB/month, ms
against s); counted things the checklist measures (events, rows, messages, queries) are added as
their own dimensions so that ``events/sec`` compares with ``events/s`` but never with ``rows/sec``.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal
from functools import lru_cache

import pint

from .choices import TargetOperator

_COMPARE = {
    TargetOperator.LT: operator.lt,
    TargetOperator.LE: operator.le,
    TargetOperator.GT: operator.gt,
    TargetOperator.GE: operator.ge,
    TargetOperator.EQ: operator.eq,
}

# Counted things that appear in checklists; each is its own dimension.
_COUNTED = (
    "event",
    "row",
    "message",
    "query",
    "request",
    "user",
    "instance",
    "vulnerability",
)

# Spellings the checklist uses that pint does not read as written.
_ALIASES = {
    "%": "percent",
    "sec": "second",
    "secs": "second",
    "msgs": "message",
    "msg": "message",
    "queries": "query",
    "hrs": "hour",
    "hr": "hour",
    "mins": "minute",
    "min": "minute",
    "KB": "kilobyte",
    "Kbps": "kilobit/second",
    "Mbps": "megabit/second",
    "Gbps": "gigabit/second",
}


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    for name in _COUNTED:
        ureg.define(f"{name} = [{name}_count] = {name}s")
    return ureg


_TOKEN = re.compile(r"[A-Za-z%]+")


def _normalise(unit: str) -> str:
    unit = unit.strip().replace("·", "*")

    def alias(match: re.Match) -> str:
        word = match.group(0)
        return _ALIASES.get(word, _ALIASES.get(word.lower(), word))

    return _TOKEN.sub(alias, unit)


def parse_unit(unit: str) -> pint.Unit | None:
    """The pint unit for a checklist unit, or None when pint cannot read it."""
    if not unit.strip():
        return None
    try:
        return _registry().parse_units(_normalise(unit))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, AssertionError):
        return None


def _same_words(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def convert(value: Decimal, from_unit: str, to_unit: str) -> Decimal | None:
    """``value`` in ``from_unit`` expressed in ``to_unit``; None when they do not convert."""
    if _same_words(from_unit, to_unit):
        return value
    if not from_unit.strip() or not to_unit.strip():
        # A bare number against a unit: only a percentage is unambiguous enough to accept.
        return value if "%" in (from_unit + to_unit) else None
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    if source is None or target is None:
        return None
    try:
        quantity = _registry().Quantity(float(value), source).to(target)
    except pint.errors.DimensionalityError:
        return None
    return Decimal(str(round(quantity.magnitude, 9)))


def meets_target(
    *,
    op: str,
    target_value: Decimal | None,
    target_unit: str,
    actual_value: Decimal | None,
    actual_unit: str,
) -> bool | None:
    """True/False when an actual is measured against a target; None when either is missing or
    the units do not convert (an actual in the wrong unit is not silently passed or failed)."""
    if not op or target_value is None or actual_value is None:
        return None
    actual = convert(actual_value, actual_unit or target_unit, target_unit)
    if actual is None:
        return None
    return bool(_COMPARE[TargetOperator(op)](actual, Decimal(target_value)))


def format_number(value: Decimal | None) -> str:
    """A decimal as a person writes it: no trailing zeros, thousands separated."""
    if value is None:
        return ""
    value = Decimal(value)
    text = f"{value:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
