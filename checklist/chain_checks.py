"""What ``verify_audit`` checks beyond the walk of the chain (``checklist.chain.verify``), each
reporting its first problem:

- **unlinked rows**: a row of a chained table without a link was not written by the portal (the
  portal links every row it writes before its transaction commits; docs/security.md §3b);
- **live rows**: every row of an audited model equals its latest history entry — its columns and
  its many-to-many links (a criterion's items, risks, requirements) — so a row or a link edited
  by SQL (which the runtime role may write) is reported, and so is a row with no history or one
  whose history says it was deleted;
- checks registered by higher apps with ``check_register`` (the sign-off app registers that every
  signature's state is the replay of its signature events).
"""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Model, Subquery

from .chain import CHECK_CHUNK, chained_models
from .models_audit import AuditChainEntry
from .triggers import OUR_APPS

_REGISTERED: dict[str, Callable[[str], str | None]] = {}


def check_register(kind: str, func: Callable[[str], str | None]) -> None:
    """Add a check: ``func(using)`` returns its first problem, or None."""
    _REGISTERED[kind] = func


def unlinked_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    for model in chained_models():
        table, pk = model._meta.db_table, model._meta.pk.attname
        linked = AuditChainEntry.objects.using(using).filter(table=table).values("row_pk")
        row = (
            model._default_manager.using(using)
            .exclude(pk__in=linked)
            .order_by(pk)
            .values_list(pk, flat=True)
            .first()
        )
        if row is not None:
            return f"{table} #{row}: has no link in the audit chain: not written by the portal"
    return None


def audited_models() -> list[type[Model]]:
    """The models of our apps whose rows keep a history (simple-history)."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label in OUR_APPS and not model.__name__.startswith("Historical"):
            history = getattr(model, "history", None)
            if history is not None and hasattr(history, "model"):
                found.append(model)
    return sorted(found, key=lambda m: m._meta.db_table)


def _tracked(model: type[Model]) -> list[str]:
    kept = {f.attname for f in model.history.model._meta.concrete_fields}
    return [f.attname for f in model._meta.concrete_fields if f.attname in kept]


def _live_problem(model: type[Model], using: str) -> str | None:
    table, pk = model._meta.db_table, model._meta.pk.attname
    history = model.history.model._default_manager.using(using)
    fields = _tracked(model)
    keys = list(model._default_manager.using(using).order_by(pk).values_list(pk, flat=True))
    for start in range(0, len(keys), CHECK_CHUNK):
        chunk = keys[start : start + CHECK_CHUNK]
        last = history.filter(**{f"{pk}__in": chunk}).values(pk).annotate(last=Max("history_id"))
        latest = {
            row[pk]: row
            for row in history.filter(history_id__in=Subquery(last.values("last"))).values(
                "history_id", "history_type", *fields
            )
        }
        problem = _links_problem(model, latest, using)
        if problem is not None:
            return problem
        rows = model._default_manager.using(using).filter(pk__in=chunk).order_by(pk)
        for row in rows.values(*fields):
            entry = latest.get(row[pk])
            if entry is None:
                return f"{table} #{row[pk]}: has no history: written outside the portal"
            if entry["history_type"] == "-":
                return f"{table} #{row[pk]}: its history says it was deleted, yet it is there"
            changed = sorted(f for f in fields if row[f] != entry[f])
            if changed:
                return (
                    f"{table} #{row[pk]}: differs from its latest history entry in "
                    f"{', '.join(changed)}: changed outside the portal"
                )
    every_last = history.values(pk).annotate(last=Max("history_id")).values("last")
    gone = (
        history.filter(history_id__in=Subquery(every_last))
        .exclude(history_type="-")
        .exclude(**{f"{pk}__in": model._default_manager.using(using).values(pk)})
        .order_by(pk)
        .values_list(pk, flat=True)
        .first()
    )
    if gone is not None:
        return f"{table} #{gone}: deleted without a history entry: deleted outside the portal"
    return None


def _links_problem(model: type[Model], latest: dict[int, dict], using: str) -> str | None:
    """The many-to-many links of these rows (a criterion's items, risks, requirements) equal the
    snapshot of links their latest history entry recorded (simple-history's ``m2m_fields``)."""
    history_model = model.history.model
    for field in getattr(history_model, "_history_m2m_fields", ()):
        through = field.remote_field.through
        own, other = f"{field.m2m_field_name()}_id", f"{field.m2m_reverse_field_name()}_id"
        recorded_model = apps.get_model(
            model._meta.app_label, f"{history_model.__name__}_{field.name}"
        )
        live: dict[int, set] = {key: set() for key in latest}
        for key, target in (
            through.objects.using(using)
            .filter(**{f"{own}__in": list(latest)})
            .values_list(own, other)
        ):
            live.setdefault(key, set()).add(target)
        owner_of = {row["history_id"]: key for key, row in latest.items()}
        recorded: dict[int, set] = {key: set() for key in latest}
        for history_id, target in (
            recorded_model.objects.using(using)
            .filter(history_id__in=list(owner_of))
            .values_list("history_id", other)
        ):
            recorded[owner_of[history_id]].add(target)
        for key in sorted(live):
            if live[key] != recorded.get(key, set()):
                return (
                    f"{through._meta.db_table}: the {field.name} of {model._meta.db_table} "
                    f"#{key} differ from its latest history entry: changed outside the portal"
                )
    return None


def live_rows_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    for model in audited_models():
        problem = _live_problem(model, using)
        if problem is not None:
            return problem
    return None


def checks_run(using: str = DEFAULT_DB_ALIAS) -> list[tuple[str, str]]:
    """(kind, first problem) of every check that found one."""
    checks = {
        "unlinked rows": unlinked_problem,
        "live rows": live_rows_problem,
        **_REGISTERED,
    }
    found = []
    for kind, check in checks.items():
        problem = check(using)
        if problem is not None:
            found.append((kind, problem))
    return found
