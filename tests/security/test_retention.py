"""Retention: records and their history are kept RETENTION_YEARS (at least 7) after a release's
final decision or last change; `purge_records` removes what is older, atomically and audited, and
`verify_audit` accounts for an audited purge while still detecting any other deletion.
Time passes by moving the rows' dates back (as the owner, past the triggers). Unmarked: these run
on SQLite and again on PostgreSQL."""

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from checklist.audit import audit_record
from checklist.chain import _columns, chain_flush, chain_head, content_sha256, link_mac, verify
from checklist.models import Item, Release
from checklist.models_audit import AuditChainEntry, AuditEvent, AuditKind, AuditPurge
from checklist.permissions import release_access_sync
from checklist.retention import records_purge, retention_cutoff
from checklist.triggers import OUR_APPS, purge_allowed
from signoffs.choices import MemberRole, SignatureMeaning, SignatureState
from signoffs.models import (
    Attestation,
    Criterion,
    DecisionRecord,
    ReleaseMember,
    ReleaseVisit,
    ReminderDispatch,
    Signature,
    SignatureEvent,
    SignoffRequirement,
)
from signoffs.services import release_reopen
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HISTORY = [
    m
    for m in apps.get_models(include_auto_created=True)
    if m._meta.app_label in OUR_APPS and hasattr(m, "instance_type")
]
GUARDIAN_GROUP_PERMS = apps.get_model("guardian", "GroupObjectPermission")


# ---------------------------------------------------------------- time travel and census
def _age(since, *, days: int) -> None:
    """Move every dated row written since ``since`` back by ``days``."""
    delta = timedelta(days=days)
    dated = [(m, "history_date") for m in HISTORY if hasattr(m, "history_date")]
    dated += [(Release, "created_at"), (Signature, "signed_at"), (SignatureEvent, "at")]
    dated += [(DecisionRecord, "created_at"), (AuditEvent, "at"), (ReleaseVisit, "seen_at")]
    # the history's copies of those columns too, or verify_audit reports the live rows as changed
    dated += [(m.history.model, c) for m, c in dated if hasattr(m, "history")]
    with purge_allowed():
        for model, column in dated:
            model._base_manager.filter(**{f"{column}__gte": since}).update(
                **{column: F(column) - delta}
            )


def _years(n: float) -> int:
    return round(n * 365.25)


def _build(name: str, *, decided: bool, users) -> Release:
    """A release with a row in every table a release has (and rows since deleted)."""
    pm, signer, auditor = users
    release = ReleaseFactory(name=name, owner=pm)
    section = SectionFactory(release=release)
    SectionFactory(release=release, parent=section, number=f"{section.number}.1")
    parent = ItemFactory(section=section)
    item = ItemFactory(section=section, parent=parent)
    item.status = "in_progress"
    item.save()
    ItemFactory(section=section).delete()  # its history stays
    risk, _ = RiskFactory(release=release), ActionItemFactory(release=release)
    final = SignoffRequirementFactory(release=release, final_decision=True, assignee=signer)
    AttestationFactory(requirement=final)
    dropped = SignoffRequirementFactory(release=release)
    AttestationFactory(requirement=dropped)
    dropped.delete()  # with its attestation: only history is left of both
    criterion = CriterionFactory(release=release)
    criterion.items.add(item)
    criterion.risks.add(risk)
    criterion.requirements.add(final)
    ReleaseMember.objects.create(release=release, user=auditor, role=MemberRole.AUDITOR)
    release_access_sync(release=release, user=auditor, view=True, manage=False)
    release_access_sync(release=release, user=pm, view=True, manage=True)
    ReminderDispatch.objects.create(recipient=signer, release=release, date=date.today())
    ReleaseVisit.objects.create(user=auditor, release=release, seen_at=timezone.now())
    LogEntry.objects.create(
        user=pm,
        content_type=ContentType.objects.get_for_model(Release),
        object_id=str(release.pk),
        object_repr=str(release),
        action_flag=CHANGE,
    )
    audit_record(AuditKind.RECORD_DOWNLOAD, actor=auditor, release=release)
    if decided:
        signature = Signature.objects.create(
            requirement=final,
            release=release,
            signer=signer,
            printed_name="Dana Signer",
            printed_role=final.role,
            meaning=SignatureMeaning.GO,
            signed_at=timezone.now(),
            snapshot_sha256="0" * 64,
        )
        SignatureEvent.objects.create(
            signature=signature, to_state=SignatureState.VALID, at=timezone.now(), reason="signed"
        )
        DecisionRecord.objects.create(
            release=release,
            signature=signature,
            snapshot_json="{}",
            snapshot_sha256="a" * 64,
            pdf=b"%PDF-1.7 sealed",
            pdf_sha256="b" * 64,
        )
        release.status = "decided"
        release.save()
    return release


def _totals() -> dict[str, int]:
    return {
        m._meta.db_table: m._base_manager.count()
        for m in apps.get_models(include_auto_created=True)
    }


def _keys(model, **where) -> set[int]:
    return set(model._base_manager.filter(**where).values_list("pk", flat=True))


def _census(release_id: int) -> dict[str, set[int]]:
    """The keys of every row of the release, per table, listed by hand (not by the code under
    test): what a purge of it must remove, and what a purge of another must leave."""
    found: dict[str, set[int]] = {}
    history_of = {m.instance_type: m for m in HISTORY}
    requirements = history_of[SignoffRequirement].objects.filter(release_id=release_id)
    criteria = history_of[Criterion].objects.filter(release_id=release_id)
    release_type = ContentType.objects.get_for_model(Release)
    groups = _keys(Group, name__startswith=f"release-{release_id}-")
    for model in apps.get_models(include_auto_created=True):
        names, live = (
            {f.name for f in model._meta.concrete_fields},
            getattr(model, "instance_type", None),
        )
        if model in (Release, history_of[Release]):
            keys = _keys(model, id=release_id)
        elif "release" in names:
            keys = _keys(model, release_id=release_id)
        elif model in (Attestation, history_of[Attestation]):
            keys = _keys(model, requirement_id__in=requirements.values("id"))
        elif model is SignatureEvent:
            keys = _keys(model, signature__release_id=release_id)
        elif "criterion" in names and live is None:  # the many-to-many rows
            keys = _keys(model, criterion__release_id=release_id)
        elif "criterion" in names:  # their history
            keys = _keys(model, history_id__in=criteria.values("history_id"))
        elif model is Group:
            keys = groups
        elif model in (GUARDIAN_GROUP_PERMS, Group.user_set.through):
            keys = _keys(model, group_id__in=groups)
        elif model is LogEntry:
            keys = _keys(model, content_type=release_type, object_id=str(release_id))
        else:
            continue
        found[model._meta.db_table] = keys
    return found


def _existing(census: dict[str, set[int]]) -> dict[str, set[int]]:
    tables = {m._meta.db_table: m for m in apps.get_models(include_auto_created=True)}
    return {table: _keys(tables[table], pk__in=keys) for table, keys in census.items()}


@pytest.fixture
def users(db):
    return UserFactory(username="pm", staff=True), UserFactory(), UserFactory()


@pytest.fixture
def ages(users):
    """A decided 8 years ago, B decided 6 years ago, C created 9 years ago and changed last
    month (never decided), D never decided and last changed 8 years ago, E deleted 8 years ago;
    sign-in events of 8 and 6 years ago and an earlier purge's event of 8 years ago."""
    made = {}
    for key, decided, age in (("A", True, 8), ("D", False, 8), ("B", True, 6), ("C", False, 9)):
        since = timezone.now()
        made[key] = _build(f"Release {key}", decided=decided, users=users)
        _age(since, days=_years(age))
    since = timezone.now()
    gone = ReleaseFactory(name="Release E")
    SectionFactory(release=gone)
    made["E"] = gone.pk
    gone.delete()
    old_login = audit_record(AuditKind.LOGIN, username="old")
    old_purge = audit_record(AuditKind.PURGE, username="retired admin", detail={"counts": {}})
    _age(since, days=_years(8))
    since = timezone.now()
    young_login = audit_record(AuditKind.LOGIN, username="young")
    _age(since, days=_years(6))
    Item.objects.filter(release=made["C"]).first().save()  # C changed now: its clock restarts
    audit_record(AuditKind.RECORD_DOWNLOAD, release=made["A"])  # tied to A: goes with A
    return made, old_login, old_purge, young_login


def _broken() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit")
    return str(refused.value)


def _link_of(model, pk) -> AuditChainEntry:
    return AuditChainEntry.objects.get(table=model._meta.db_table, row_pk=pk)


# ---------------------------------------------------------------- what goes and what stays
def test_purge_dry_run_lists_what_would_go_and_writes_nothing(ages, capsys):
    made, *_ = ages
    before, links = _totals(), AuditChainEntry.objects.count()
    call_command("purge_records", "--dry-run")
    out = capsys.readouterr().out
    assert f"#{made['A'].pk} Release A ({made['A'].version}): decided" in out
    assert f"#{made['D'].pk} Release D ({made['D'].version}): never decided" in out
    assert "Release B" not in out and "Release C" not in out
    assert "checklist_historicalitem" in out and "Dry run:" in out
    assert _totals() == before and AuditChainEntry.objects.count() == links == 0


def test_purge_removes_old_releases_with_all_rows_and_history_and_keeps_young_ones(ages):
    made, old_login, old_purge, young_login = ages
    a, b, c, d, e = (made[k] for k in "ABCDE")
    before = _totals()
    census = {k: _census(made[k].pk) for k in "ABCD"}
    census["E"] = _census(e)
    assert all(census["A"].values()) and all(census["B"].values())  # a row in every table
    assert all(census["C"][t] for t in census["C"] if "signature" not in t and "decision" not in t)
    b_signature = Signature.objects.get(release=b)

    call_command("purge_records", "--by", "pm")

    for gone in "ADE":
        assert not any(_existing(census[gone]).values()), _existing(census[gone])
        assert not any(_census(made[gone].pk if gone != "E" else e).values())
    for kept in "BC":
        assert _census(made[kept].pk) == census[kept]
    b_signature.refresh_from_db()
    assert b_signature.state == SignatureState.VALID  # no stale-marking from the purge
    events = AuditEvent.objects.filter(pk__in=[old_login.pk, old_purge.pk, young_login.pk])
    assert set(events.values_list("username", flat=True)) == {"retired admin", "young"}

    event = AuditEvent.objects.get(kind=AuditKind.PURGE, username="pm")
    counts, after = event.detail["counts"], _totals()
    assert {m._meta.db_table for m in HISTORY} <= set(counts)  # every history table is reached
    for table in census["A"]:  # exactly the rows of A, D and E, and the old sign-in
        rows = census["A"][table] | census["D"][table] | census["E"].get(table, set())
        loose = 1 if table == "checklist_auditevent" else 0
        assert counts[table] == len(rows) + loose, table
    grown = {"checklist_auditevent": 1, "checklist_auditpurge": 1}
    for table, number in before.items():
        if table != "checklist_auditchainentry":  # links are added, never removed
            assert number - counts.get(table, 0) + grown.get(table, 0) == after[table], table
    assert [r["id"] for r in event.detail["releases"]] == sorted([a.pk, d.pk, e])


def test_purge_keeps_a_release_decided_long_ago_when_changed_since(users, capsys):
    since = timezone.now()
    reopened = _build("Reopened", decided=True, users=users)
    _age(since, days=_years(8))
    # A decided release is frozen: reopened (by the system, as a command would), then changed.
    release_reopen(release=reopened, by=None, reason="Audit finding")
    Item.objects.filter(release=reopened).first().save()  # changed after the decision: kept
    call_command("purge_records", "--dry-run")
    out = capsys.readouterr().out
    assert "Releases to purge: 0" in out and "Reopened" not in out


def test_purge_event_records_who_when_cutoff_releases_and_counts(ages, capsys):
    made, *_ = ages
    e_version = Release.history.filter(id=made["E"]).first().version
    cutoff = retention_cutoff(before=date.today() - timedelta(days=_years(7.5)))
    call_command("purge_records", "--before", cutoff.date().isoformat())
    assert "Purged" in capsys.readouterr().out
    marker = AuditPurge.objects.get()
    event = marker.event
    assert event.kind == AuditKind.PURGE and event.actor is None and event.username  # OS user
    assert event.detail["cutoff"] == cutoff.isoformat() and event.detail["retention_years"] == 7
    assert {(r["name"], r["version"]) for r in event.detail["releases"]} == {
        ("Release A", made["A"].version),
        ("Release D", made["D"].version),
        ("Release E", e_version),
    }
    assert event.detail["counts"]["signoffs_decisionrecord"] == 1
    assert event.detail["counts"]["checklist_auditevent"] == 4  # A's two, D's, the old sign-in
    assert marker.cutoff == cutoff
    listed = {k for lo, hi in marker.purged["checklist_release"] for k in range(lo, hi + 1)}
    assert listed == {made["A"].pk, made["D"].pk}


def test_purge_refuses_a_cutoff_younger_than_the_retention_period(ages):
    before = _totals()
    six_years_ago = date.today() - timedelta(days=_years(6))
    with pytest.raises(CommandError, match="younger than the 7-year retention period"):
        call_command("purge_records", "--before", six_years_ago.isoformat())
    with pytest.raises(ValidationError, match="younger than the 7-year retention period"):
        records_purge(cutoff=timezone.now() - timedelta(days=_years(6)), username="x")
    assert _totals() == before


def test_purge_refuses_retention_years_below_seven(ages, settings):
    settings.RETENTION_YEARS = 5
    before = _totals()
    with pytest.raises(CommandError, match="RETENTION_YEARS is 5: .* at least 7 years"):
        call_command("purge_records", "--dry-run")
    assert _totals() == before


def test_settings_refuse_retention_years_below_seven_at_startup():
    started = subprocess.run(
        [sys.executable, "-c", "import dcmms_release.settings"],
        env={**os.environ, "RETENTION_YEARS": "6"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "RETENTION_YEARS=6: compliance records are kept at least 7 years" in started.stderr


def test_purge_leaves_everything_in_place_when_it_fails_midway(ages, monkeypatch):
    chain_flush()
    before, head = _totals(), chain_head()

    def broken(marker, using):
        raise DatabaseError("disk full")

    monkeypatch.setattr("checklist.retention.chain_link_purge", broken)
    with pytest.raises(DatabaseError, match="disk full"):
        call_command("purge_records")
    assert _totals() == before and chain_head() == head
    assert list(AuditEvent.objects.filter(kind=AuditKind.PURGE)) == [ages[2]]
    assert not AuditPurge.objects.exists()
    assert verify()[1] is None


def test_purge_command_says_to_run_as_the_owner_when_the_database_refuses(ages, monkeypatch):
    def refused(**kwargs):
        raise DatabaseError("append-only: DELETE on checklist_historicalitem refused")

    monkeypatch.setattr("checklist.management.commands.purge_records.records_purge", refused)
    with pytest.raises(CommandError, match="run it as the tables' owner.*Nothing was deleted"):
        call_command("purge_records")
    with pytest.raises(CommandError, match="--by 'nobody': no such user"):
        call_command("purge_records", "--by", "nobody")


def test_purge_markers_refuse_update_and_delete_when_append_only(ages, append_only):
    call_command("purge_records")
    marker = AuditPurge.objects.get()
    for action in (
        lambda: AuditPurge.objects.filter(pk=marker.pk).update(purged={}),
        lambda: AuditPurge.objects.filter(pk=marker.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            action()
    assert AuditPurge.objects.get().purged == marker.purged


# ---------------------------------------------------------------- the chain after a purge
@pytest.fixture
def purged(ages):
    """Everything linked, then an audited purge."""
    assert chain_flush() > 0
    call_command("purge_records")
    return ages[0]


def test_verify_audit_passes_after_an_audited_purge(purged, capsys):
    assert AuditPurge.objects.count() == 1
    assert chain_flush() == 0  # the purge linked its event and its marker itself
    call_command("verify_audit")
    assert "Audit chain intact" in capsys.readouterr().out


def test_verify_audit_names_a_row_deleted_outside_a_purge(purged):
    row = Release.history.filter(id=purged["B"].pk).first()
    seq = _link_of(Release.history.model, row.pk).seq
    with purge_allowed():
        Release.history.filter(pk=row.pk).delete()
    message = _broken()
    assert f"entry {seq}:" in message and "the row was deleted" in message
    assert "(listed by" not in message


def _forge_marker(purged_rows: dict) -> AuditPurge:
    event = audit_record(AuditKind.PURGE, username="mallory")
    return AuditPurge.objects.create(cutoff=timezone.now(), event=event, purged=purged_rows)


def test_verify_audit_names_the_deleted_row_when_a_forged_marker_lists_it(purged):
    row = Release.history.filter(id=purged["B"].pk).first()
    table, seq = Release.history.model._meta.db_table, _link_of(Release.history.model, row.pk).seq
    with purge_allowed():
        _forge_marker({table: [[row.pk, row.pk]]})
        Release.history.filter(pk=row.pk).delete()
    chain_flush()  # links the forged marker's audit event (post_save), never a marker
    message = _broken()
    assert f"entry {seq}:" in message and "the row was deleted (listed by purge marker #" in message
    assert "which has no link: forged" in message


def test_verify_audit_reports_a_purge_marker_without_a_link_as_forged(purged):
    forged = _forge_marker({"checklist_historicalrelease": [[1, 10**6]]})
    assert chain_flush() == 1  # its audit event only
    assert not AuditChainEntry.objects.filter(table="checklist_auditpurge", row_pk=forged.pk)
    message = _broken()
    assert f"checklist_auditpurge #{forged.pk}: a purge marker with no link" in message


def test_verify_audit_names_a_forged_marker_link_made_without_the_key(purged, settings):
    row = Release.history.filter(id=purged["C"].pk).first()
    forged = _forge_marker({Release.history.model._meta.db_table: [[row.pk, row.pk]]})
    chain_flush()
    head, table = chain_head(), AuditPurge._meta.db_table
    content = content_sha256(
        AuditPurge.objects.filter(pk=forged.pk).values(*_columns(AuditPurge)).get()
    )
    real_key, settings.AUDIT_CHAIN_KEY = settings.AUDIT_CHAIN_KEY, "a guess: not the real key"
    mac = link_mac(head["seq"] + 1, table, forged.pk, content, head["mac"])
    settings.AUDIT_CHAIN_KEY = real_key
    AuditChainEntry.objects.create(
        seq=head["seq"] + 1,
        table=table,
        row_pk=forged.pk,
        content_sha256=content,
        prev_mac=head["mac"],
        mac=mac,
    )
    with purge_allowed():
        Release.history.filter(pk=row.pk).delete()
    message = _broken()
    assert f"entry {_link_of(Release.history.model, row.pk).seq}:" in message
    assert f"the row was deleted (listed by purge marker #{forged.pk}, which does not match" in (
        message
    )


def test_verify_audit_names_the_marker_link_when_a_purge_marker_is_edited(purged):
    marker = AuditPurge.objects.get()
    seq = _link_of(AuditPurge, marker.pk).seq
    with purge_allowed():
        AuditPurge.objects.filter(pk=marker.pk).update(purged={**marker.purged, "x": [[1, 2]]})
    message = _broken()  # the purged rows are no longer accounted for: the first is named
    assert "the row was deleted" in message
    assert f"purge marker #{marker.pk}, which does not match its link, entry {seq}" in message


def test_verify_audit_refuses_an_edited_marker_as_cover_for_a_deletion(purged):
    marker = AuditPurge.objects.get()
    row = Release.history.filter(id=purged["B"].pk).first()
    table = Release.history.model._meta.db_table
    with purge_allowed():
        widened = {**marker.purged, table: [*marker.purged[table], [row.pk, row.pk]]}
        AuditPurge.objects.filter(pk=marker.pk).update(purged=widened)
        Release.history.filter(pk=row.pk).delete()
    message = _broken()
    assert "the row was deleted (listed by purge marker" in message  # the first purged row
    assert f"which does not match its link, entry {_link_of(AuditPurge, marker.pk).seq}" in message


# ---------------------------------------------------------------- tampering made to look due
def test_purge_refuses_a_young_release_backdated_after_it_was_linked(users):
    since = timezone.now()
    young = _build("Backdated", decided=True, users=users)
    chain_flush()
    census, before = _census(young.pk), _totals()
    _age(since, days=_years(8))  # an owner moves every date back past the retention period

    with pytest.raises(CommandError, match="Purge refused, nothing was deleted: .*changed since"):
        call_command("purge_records", "--by", "pm")

    assert _existing(census) == census and _totals() == before
    assert not AuditPurge.objects.exists()
    assert "the row was changed" in _broken()  # and verify_audit names it


def test_purge_refuses_to_take_a_young_release_rows_pointed_at_an_old_release(ages):
    made = ages[0]
    young = made["B"]
    chain_flush()
    item = Item.objects.filter(release=young).first()
    with purge_allowed():  # the live row is not chained: re-point it at the due release A
        Item.objects.filter(pk=item.pk).update(release=made["A"])
    young_history = set(Item.history.filter(id=item.pk).values_list("history_id", flat=True))

    with pytest.raises(CommandError, match="belongs to a release not due"):
        call_command("purge_records", "--by", "pm")

    assert set(Item.history.filter(id=item.pk).values_list("history_id", flat=True)) == (
        young_history
    )
    assert Release.objects.filter(pk=made["A"].pk).exists()  # nothing of the purge happened
