"""Everything of one release, for the retention purge: its rows in every table and the history
rows of all of them, found by following foreign keys from the release rather than from a list —
so a model added later with a key to a release, or to anything of a release, goes with it.

The rules, in the order they are applied until nothing new is found:

- a row with a key to the release belongs to it (only that key counts, so a row of another
  release that merely points at one of this release's rows is never taken);
- a row without such a key belongs to it when any of its keys (cascade, protect or do-nothing,
  as history and audit rows have) points at a row that does;
- every history row of a row that belongs to it, and — through the history rows' own keys —
  the history of rows already deleted (an item removed years ago, its attestation);
- object permissions and admin log entries about those rows (content type + object id), and a
  group that holds object permissions on those rows and on nothing else (the release's viewer
  and manager groups) with its memberships.

Reading only; ``rows_delete`` deletes what was found without signals (no history rows, no
stale-marking) and returns, per table, the primary keys it removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import Model

from .models import Release
from .models_audit import AuditChainEntry, AuditPurge

CHUNK = 500  # keys per IN (...): SQLite allows 999 parameters
OWNING = (models.CASCADE, models.PROTECT, models.DO_NOTHING)
NEVER = (AuditChainEntry, AuditPurge)  # the chain and its purge markers are never purged

Rows = dict[type[Model], set[int]]


def chunks(keys: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    ordered = sorted(keys)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _live(model: type[Model]) -> type[Model] | None:
    """The model whose history ``model`` holds (simple-history sets ``instance_type``)."""
    live = getattr(model, "instance_type", None)
    return live if isinstance(live, type) and issubclass(live, Model) else None


def _keys(model: type[Model]) -> list[models.ForeignKey]:
    found = [
        f
        for f in model._meta.concrete_fields
        if f.is_relation and (f.many_to_one or f.one_to_one) and f.remote_field.on_delete in OWNING
    ]
    to_release = [f for f in found if f.related_model is Release]
    return to_release or found


def _models() -> list[type[Model]]:
    return [m for m in apps.get_models(include_auto_created=True) if m not in NEVER]


def _follow(rows: Rows, fresh: Rows, using: str) -> None:
    """Add to ``rows`` every row reachable from ``fresh`` (rows just found), until none is new."""
    everything = _models()
    while fresh:
        found: Rows = {}
        for model in everything:
            pk = model._meta.pk.attname
            live = _live(model)
            paths = [(f.attname, f.related_model) for f in _keys(model)]
            if live is not None:
                paths.append((live._meta.pk.attname, live))  # the history of a row found
            for column, target in paths:
                for chunk in chunks(fresh.get(target, ())):
                    query = model._base_manager.using(using).filter(**{f"{column}__in": chunk})
                    for key, obj in query.values_list(pk, live._meta.pk.attname if live else pk):
                        if key not in rows.get(model, ()):
                            found.setdefault(model, set()).add(key)
                            if live is not None and obj not in rows.get(live, ()):
                                found.setdefault(live, set()).add(obj)  # maybe deleted long ago
        for model, keys in found.items():
            rows.setdefault(model, set()).update(keys)
        fresh = found


def _generic(rows: Rows, using: str) -> Rows:
    """Rows about found rows by content type and object id (object permissions, admin log)."""
    content_type = apps.get_model("contenttypes", "ContentType")
    found: Rows = {}
    for model in _models():
        names = {f.name for f in model._meta.concrete_fields}
        column = "object_pk" if "object_pk" in names else "object_id"
        if "content_type" not in names or column not in names:
            continue
        for target, keys in rows.items():
            if _live(target) is not None or not keys:
                continue
            kind = content_type.objects.db_manager(using).filter(  # never created: read only
                app_label=target._meta.app_label, model=target._meta.model_name
            )
            for chunk in chunks(keys):
                query = model._base_manager.using(using).filter(
                    content_type__in=kind, **{f"{column}__in": [str(k) for k in chunk]}
                )
                found.setdefault(model, set()).update(query.values_list("pk", flat=True))
    return {model: keys for model, keys in found.items() if keys}


def _dedicated_groups(generic: Rows, using: str) -> set[int]:
    """Groups holding object permissions on found rows only: the release's own groups."""
    groups: set[int] = set()
    for model, keys in generic.items():
        if "group" not in {f.name for f in model._meta.concrete_fields}:
            continue
        manager = model._base_manager.using(using)
        mine: set[int] = set()
        for chunk in chunks(keys):
            mine.update(manager.filter(pk__in=chunk).values_list("group_id", flat=True))
        for chunk in chunks(mine):
            for key, group in manager.filter(group_id__in=chunk).values_list("pk", "group_id"):
                if key not in keys:
                    mine.discard(group)  # it also grants something that stays
        groups |= mine
    return groups


def _present(rows: Rows, using: str) -> Rows:
    """Only the rows that exist (keys known from history alone may be long deleted)."""
    present: Rows = {}
    for model, keys in rows.items():
        manager = model._base_manager.using(using)
        for chunk in chunks(keys):
            found = manager.filter(pk__in=chunk).values_list("pk", flat=True)
            present.setdefault(model, set()).update(found)
    return {model: keys for model, keys in present.items() if keys}


def release_rows(release_ids: Iterable[int], using: str = DEFAULT_DB_ALIAS) -> Rows:
    """Every existing row of the releases (live or deleted, with all history), per model."""
    rows: Rows = {Release: set(release_ids)}
    _follow(rows, {Release: set(release_ids)}, using)
    generic = _generic(rows, using)
    for model, keys in generic.items():
        rows.setdefault(model, set()).update(keys)
    groups = _dedicated_groups(generic, using)
    if groups:
        group = apps.get_model("auth", "Group")
        rows.setdefault(group, set()).update(groups)
        _follow(rows, {group: groups}, using)
    return _present(rows, using)


def _order(models_found: Iterable[type[Model]]) -> list[type[Model]]:
    """Rows that point at others first (constraints are deferred, but the order reads right)."""
    pending = list(models_found)
    ordered: list[type[Model]] = []
    while pending:
        pointed = {
            f.related_model
            for m in pending
            for f in m._meta.concrete_fields
            if f.is_relation and f.related_model is not m
        }
        ready = [m for m in pending if m not in pointed] or pending[:1]
        ordered += ready
        pending = [m for m in pending if m not in ready]
    return ordered


def rows_delete(rows: Rows, using: str = DEFAULT_DB_ALIAS) -> dict[str, list[int]]:
    """Delete the rows found (as ``release_rows`` returns them: existing rows only), without
    signals: no history row is written for them and nothing reacts as to an edit. Returns the
    deleted primary keys per table. Runs inside the purge switch (``triggers.purge_allowed``)."""
    deleted: dict[str, list[int]] = {}
    for model in _order(rows):
        for chunk in chunks(rows[model]):
            model._base_manager.using(using).filter(pk__in=chunk)._raw_delete(using)
        deleted[model._meta.db_table] = sorted(rows[model])
    return deleted


def pk_ranges(keys: Iterable[int]) -> list[list[int]]:
    """Sorted integer keys as [first, last] runs: [1, 2, 3, 7] → [[1, 3], [7, 7]]."""
    ranges: list[list[int]] = []
    for key in sorted(keys):
        if not isinstance(key, int):
            raise TypeError(f"purge markers hold integer keys; got {key!r}")
        if ranges and key == ranges[-1][1] + 1:
            ranges[-1][1] = key
        else:
            ranges.append([key, key])
    return ranges
