"""The keyed hash chain (checklist.chain) and `verify_audit`: each kind of tampering is detected.
The attacker is simulated as the tables' owner using the purge switch (past the triggers).
Unmarked: these run on SQLite in `make test` and on PostgreSQL in the second run of .ci/run."""

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from checklist.audit import audit_record
from checklist.chain import (
    GENESIS,
    _columns,
    chain_head,
    chain_pending,
    chained_models,
    content_sha256,
    link_mac,
    verify,
)
from checklist.models import Item, Release
from checklist.models_audit import AuditChainEntry
from checklist.triggers import purge_allowed
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import Signature
from tests.factories import ReleaseFactory, SectionFactory, SignoffRequirementFactory, UserFactory

pytestmark = pytest.mark.django_db

HistoricalRelease = Release.history.model


@pytest.fixture
def chained(append_only):
    """A few releases, audit events and a signature, all linked."""
    releases = [ReleaseFactory(name=f"Release {n}") for n in range(3)]
    for n in range(3):
        audit_record("login", username=f"user{n}")
    requirement = SignoffRequirementFactory(release=releases[0])
    signature = Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=UserFactory(),
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.APPROVED,
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )
    assert chain_pending() >= 8
    assert verify() == (AuditChainEntry.objects.count(), None)
    return releases, signature


def _broken(anchor=None) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit", *(["--anchor", str(anchor)] if anchor else []))
    return str(refused.value)


def _link_of(row) -> AuditChainEntry:
    return AuditChainEntry.objects.get(table=type(row)._meta.db_table, row_pk=row.pk)


# ---------------------------------------------------------------- linking
def test_chain_links_every_protected_row_once_when_swept(chained, capsys):
    assert chain_pending() == 0
    seqs = list(AuditChainEntry.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert AuditChainEntry.objects.order_by("seq").first().prev_mac == GENESIS
    call_command("verify_audit")
    assert f"Audit chain intact: {len(seqs)} links verified." in capsys.readouterr().out


def test_chain_sweep_is_scheduled_after_commit_when_a_protected_row_is_saved(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        release = ReleaseFactory()
        audit_record("logout", username="dana")
    assert len(callbacks) == 1  # one sweep per transaction, however many rows
    row = HistoricalRelease.objects.get(id=release.pk)
    assert _link_of(row).content_sha256 == content_sha256(
        HistoricalRelease.objects.filter(pk=row.pk).values().get()
    )


def test_chain_links_bulk_imported_history_in_one_sweep_with_bounded_queries(
    django_assert_max_num_queries,
):
    section = SectionFactory()
    items = [
        Item(section=section, release=section.release, text=f"item {n}", order=n)
        for n in range(400)
    ]
    bulk_create_with_history(items, Item)
    with django_assert_max_num_queries(len(chained_models()) + 6):
        linked = chain_pending()
    assert linked >= 400
    assert AuditChainEntry.objects.filter(table=Item.history.model._meta.db_table).count() >= 400
    assert verify()[1] is None


def test_sweep_after_commit_reads_only_the_marked_tables_however_large_the_history(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        ReleaseFactory.create_batch(30)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = audit_record("logout", username="dana")
    assert len(callbacks) == 1
    # savepoint, lock (PostgreSQL only), head, the marked table's unlinked rows, one insert,
    # release: not one query per chained table
    with django_assert_max_num_queries(6):
        callbacks[0]()
    assert _link_of(event).seq == chain_head()["seq"]
    assert len(chained_models()) > 4  # the full sweep would read every one of them


def test_unmarked_row_waits_for_the_full_sweep_task_when_written_without_a_signal(
    django_capture_on_commit_callbacks,
):
    from checklist.tasks import chain_sweep

    with django_capture_on_commit_callbacks(execute=True):
        release = ReleaseFactory()
    row = HistoricalRelease.objects.filter(id=release.pk).values().first()
    row.pop("history_id")
    HistoricalRelease.objects.bulk_create([HistoricalRelease(**row)])  # no post_save: unmarked
    unmarked = HistoricalRelease.objects.order_by("-history_id").first()
    with django_capture_on_commit_callbacks(execute=True):
        audit_record("logout", username="dana")  # another transaction's sweep after commit
    assert not AuditChainEntry.objects.filter(
        table=HistoricalRelease._meta.db_table, row_pk=unmarked.pk
    ).exists()

    assert chain_sweep() == 1
    assert _link_of(unmarked) and verify()[1] is None


def test_m2m_history_and_bulk_imported_rows_are_linked_after_commit(
    django_capture_on_commit_callbacks,
):
    from signoffs.documents import release_import
    from tests.factories import CriterionFactory, ItemFactory

    text = (Path(__file__).resolve().parents[1] / "data" / "second_checklist.md").read_text()
    with django_capture_on_commit_callbacks(execute=True):
        release = release_import(text=text, source_name="second_checklist.md")
    with django_capture_on_commit_callbacks(execute=True):
        criterion = CriterionFactory(release=release)
        criterion.items.add(ItemFactory(release=release))

    item_history = Item.history.filter(release_id=release.pk)
    m2m_history = apps.get_model("signoffs", "HistoricalCriterion_items").objects.all()
    assert item_history.count() >= 3 and m2m_history.exists()
    for row in [*item_history, *m2m_history]:
        assert _link_of(row)
    assert chain_pending() == 0


def test_signature_state_change_keeps_the_chain_valid_when_revoked_properly(chained):
    _, signature = chained
    signature.state = SignatureState.REVOKED
    signature.save()
    assert verify()[1] is None


# ---------------------------------------------------------------- tampering detected
def test_verify_audit_names_the_link_when_a_history_row_is_edited(chained):
    releases, _ = chained
    row = HistoricalRelease.objects.filter(id=releases[1].pk).first()
    with purge_allowed():
        HistoricalRelease.objects.filter(pk=row.pk).update(name="Forged")
    message = _broken()
    assert f"entry {_link_of(row).seq}:" in message and "the row was changed" in message


def test_verify_audit_detects_a_signature_whose_frozen_columns_were_edited(chained):
    _, signature = chained
    with purge_allowed():
        Signature.objects.filter(pk=signature.pk).update(printed_name="Mallory")
    message = _broken()
    assert f"entry {_link_of(signature).seq}:" in message and "changed" in message


def test_verify_audit_detects_a_deleted_row(chained):
    releases, _ = chained
    row = HistoricalRelease.objects.filter(id=releases[2].pk).first()
    seq = _link_of(row).seq
    with purge_allowed():
        HistoricalRelease.objects.filter(pk=row.pk).delete()
    message = _broken()
    assert f"entry {seq}:" in message and "deleted" in message


def test_verify_audit_detects_a_deleted_link(chained):
    victim = AuditChainEntry.objects.get(seq=5)
    with purge_allowed():
        AuditChainEntry.objects.filter(pk=victim.pk).delete()
    assert "entry 5: missing" in _broken()


def test_verify_audit_detects_reordered_links(chained):
    first, second = AuditChainEntry.objects.get(seq=3), AuditChainEntry.objects.get(seq=4)
    with purge_allowed():
        AuditChainEntry.objects.filter(pk=first.pk).update(seq=10**9)
        AuditChainEntry.objects.filter(pk=second.pk).update(seq=3)
        AuditChainEntry.objects.filter(pk=first.pk).update(seq=4)
    message = _broken()
    assert "entry 3:" in message and "does not follow" in message


def test_verify_audit_detects_a_forged_insert_without_the_key(chained, settings):
    template = HistoricalRelease.objects.order_by("pk").last()
    values = {
        f.attname: getattr(template, f.attname)
        for f in HistoricalRelease._meta.concrete_fields
        if f.attname != "history_id"
    }
    forged = HistoricalRelease.objects.create(**{**values, "name": "Approved by nobody"})
    table, head = HistoricalRelease._meta.db_table, chain_head()
    content = content_sha256(
        HistoricalRelease.objects.filter(pk=forged.pk).values(*_columns(HistoricalRelease)).get()
    )
    real_key = settings.AUDIT_CHAIN_KEY
    settings.AUDIT_CHAIN_KEY = "a guess: the real key is not in the database"
    mac = link_mac(head["seq"] + 1, table, forged.pk, content, head["mac"])
    settings.AUDIT_CHAIN_KEY = real_key
    AuditChainEntry.objects.create(  # appending is allowed: no purge switch needed
        seq=head["seq"] + 1,
        table=table,
        row_pk=forged.pk,
        content_sha256=content,
        prev_mac=head["mac"],
        mac=mac,
    )
    message = _broken()
    assert f"entry {head['seq'] + 1}:" in message and "MAC is wrong" in message


def test_verify_audit_detects_a_truncated_tail_against_the_anchor(chained, tmp_path):
    anchor = tmp_path / "anchor.json"
    call_command("export_audit_anchor", "--output", str(anchor))
    saved = json.loads(anchor.read_text())
    assert saved["seq"] == AuditChainEntry.objects.count() and saved["mac"] == chain_head()["mac"]
    call_command("verify_audit", "--anchor", str(anchor))  # intact: no error
    with purge_allowed():
        AuditChainEntry.objects.filter(seq__gt=saved["seq"] - 2).delete()
    assert verify()[1] is None  # without the anchor, a shorter chain still looks valid
    message = _broken(anchor)
    assert f"entry {saved['seq']}:" in message and "truncated" in message


def test_verify_audit_detects_a_rewritten_chain_against_the_anchor(chained, tmp_path):
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({**chain_head(), "mac": "f" * 64}))
    assert "differs from the anchor" in _broken(anchor)


def test_verify_audit_refuses_an_unreadable_anchor(chained, tmp_path):
    assert "Cannot read the anchor" in _broken(tmp_path / "missing.json")
