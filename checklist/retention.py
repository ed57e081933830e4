"""Retention (21 CFR Part 11 §11.10(c), (e)): a release's records and their whole audit trail are
kept ``RETENTION_YEARS`` (at least 7) after its retention clock starts, then purged, audited.

The clock starts at the release's final decision or, for a release never decided, at its last
change (``retention_clock``). A purge removes the release and everything of it (``retention_rows``),
with the history rows and the audit events tied to it, and audit events tied to no release (sign-
ins and the like) older than the cutoff — except the records of earlier purges, which account for
what the chain no longer holds. Nothing younger is touched.

One transaction, under the purge switch: link what is pending, delete without signals, write the
``purge`` audit event (who, cutoff, releases, counts per table) and the ``AuditPurge`` marker
listing every removed row, and link the marker with the key (``chain.chain_link_purge``), so
that ``verify_audit`` accounts for the purged rows and still reports any other deletion.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from .audit import audit_record
from .chain import chain_flush, chain_link_purge, chained_models, rows_unlinked_or_changed
from .models import Release
from .models_audit import AuditEvent, AuditKind, AuditPurge
from .retention_clock import ReleaseDue, loose_events, releases_due
from .retention_rows import chunks, pk_ranges, release_rows, rows_delete
from .triggers import purge_allowed

MINIMUM_YEARS = 7
RELEASES_AT_ONCE = 20


@dataclass
class PurgeReport:
    cutoff: datetime
    releases: list[ReleaseDue]
    counts: dict[str, int]  # rows per table
    event: AuditEvent | None = None
    marker: AuditPurge | None = None
    link_seq: int | None = None
    purged: dict[str, list[list[int]]] = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------- the policy
def retention_years() -> int:
    years = int(getattr(settings, "RETENTION_YEARS", MINIMUM_YEARS))
    if years < MINIMUM_YEARS:
        raise ImproperlyConfigured(
            f"RETENTION_YEARS is {years}: compliance records are kept at least "
            f"{MINIMUM_YEARS} years. Set RETENTION_YEARS to {MINIMUM_YEARS} or more."
        )
    return years


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def retention_cutoff(*, before: date | None = None, now: datetime | None = None) -> datetime:
    """The policy's cutoff (now − RETENTION_YEARS), or an older one from ``before``; a cutoff
    younger than the policy is refused (it would purge records still to be kept)."""
    latest = _years_before(now or timezone.now(), retention_years())
    if before is None:
        return latest
    cutoff = timezone.make_aware(datetime.combine(before, time.min))
    if cutoff > latest:
        raise ValidationError(
            f"--before {before.isoformat()} would purge records younger than the "
            f"{retention_years()}-year retention period; the latest allowed date is "
            f"{latest.date().isoformat()}."
        )
    return cutoff


# ---------------------------------------------------------------- the purge
def _merge(purged: dict[str, list[list[int]]], table: str, keys) -> None:
    """Add keys to a table's ranges (batches interleave: runs that touch are joined)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(purged.get(table, []) + pk_ranges(keys)):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if merged:
        purged[table] = merged


def records_purge(
    *,
    cutoff: datetime,
    username: str,
    actor=None,
    dry_run: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> PurgeReport:
    """Purge every record whose retention clock started before ``cutoff`` (never younger than the
    policy allows), atomically and audited; with ``dry_run``, only say what would go."""
    latest = retention_cutoff()  # refuses RETENTION_YEARS below the minimum
    if cutoff > latest:
        raise ValidationError(
            f"The cutoff {cutoff.isoformat()} is younger than the {retention_years()}-year "
            f"retention period allows (at most {latest.isoformat()})."
        )
    if dry_run:
        with transaction.atomic(using=using):  # one consistent reading; nothing is written
            return _purge(cutoff=cutoff, username=username, actor=actor, using=using, write=False)
    _refuse_unless_owner(using)
    with purge_allowed(using):
        return _purge(cutoff=cutoff, username=username, actor=actor, using=using, write=True)


def _refuse_unless_owner(using: str) -> None:
    """On PostgreSQL only the tables' owner gets past the append-only triggers (the runtime
    role has no DELETE on the audit records at all). Anyone else is refused before anything is
    read or written — even when nothing is due, so that no purge event claims a purge that
    could not have deleted anything."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
            "WHERE oid = %s::regclass",
            [connection.ops.quote_name(AuditEvent._meta.db_table)],
        )
        row = cursor.fetchone()
    if not (row and row[0]):
        raise ValidationError(
            "The database refused the purge (append-only audit records): run it as the tables' "
            "owner, the role that runs migrate. Nothing was deleted."
        )


def _refuse_tampered(rows: dict, release_ids: set[int] | None, using: str) -> None:
    """Before anything is deleted: every audit row about to go must still match its link in the
    chain, and a row that names its release must name one being purged — so that backdating a
    young release's dates, or pointing its rows at an old release, cannot pass its records off
    as due and have the purge cover their deletion. Refuses the whole purge otherwise."""
    chained = set(chained_models())
    for model, keys in rows.items():
        if model not in chained:
            continue
        problem = rows_unlinked_or_changed(model, keys, using)
        names_release = "release_id" if hasattr(model, "release_id") else None
        if model is Release.history.model:
            names_release = "id"
        if problem is None and names_release and release_ids is not None:
            for chunk in chunks(keys):
                stray = (
                    model._default_manager.using(using)
                    .filter(pk__in=chunk)
                    .exclude(**{f"{names_release}__in": release_ids})
                    .values_list("pk", flat=True)
                    .first()
                )
                if stray is not None:
                    problem = f"{model._meta.db_table} #{stray}: belongs to a release not due"
                    break
        if problem:
            raise ValidationError(
                f"Purge refused, nothing was deleted: {problem}. The records do not match the "
                "audit trail; run `manage.py verify_audit` and investigate before purging."
            )


def _purge(*, cutoff, username, actor, using, write: bool) -> PurgeReport:
    releases = releases_due(cutoff=cutoff, using=using)
    if write:
        # Lock what is decided on, then decide again: a change that got in first makes it young.
        ids = {r.id for r in releases}
        for chunk in chunks(ids):
            list(Release.objects.using(using).select_for_update().filter(pk__in=chunk))
        releases = [r for r in releases_due(cutoff=cutoff, using=using) if r.id in ids]
        chain_flush(using)  # the purge's own rows so far; every row about to go must be linked
    counts: Counter[str] = Counter()
    purged: dict[str, list[list[int]]] = {}
    for batch in chunks([r.id for r in releases], RELEASES_AT_ONCE):  # bounded memory
        rows = release_rows(batch, using)
        if write:
            _refuse_tampered(rows, set(batch), using)
            for table, keys in rows_delete(rows, using).items():
                _merge(purged, table, keys)
        for model, keys in rows.items():
            counts[model._meta.db_table] += len(keys)
    events = loose_events(cutoff=cutoff, using=using)
    if events:
        counts[AuditEvent._meta.db_table] += len(events)
    report = PurgeReport(cutoff=cutoff, releases=releases, counts=dict(sorted(counts.items())))
    if not write:
        return report
    _refuse_tampered({AuditEvent: set(events)}, None, using)
    for chunk in chunks(events):
        AuditEvent.objects.using(using).filter(pk__in=chunk)._raw_delete(using)
    _merge(purged, AuditEvent._meta.db_table, events)
    report.purged = dict(sorted(purged.items()))
    report.event = audit_record(
        AuditKind.PURGE,
        actor=actor,
        username=username,
        detail={
            "cutoff": cutoff.isoformat(),
            "retention_years": retention_years(),
            "releases": [r.as_detail() for r in releases],
            "counts": report.counts,
        },
    )
    report.marker = AuditPurge.objects.using(using).create(
        cutoff=cutoff, event=report.event, purged=report.purged
    )
    report.link_seq = chain_link_purge(report.marker, using).seq
    return report
