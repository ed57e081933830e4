"""The keyed hash chain (checklist.chain) and `verify_audit`: each kind of tampering is detected.
The attacker is simulated as the tables' owner using the purge switch (past the triggers).
Unmarked: these run on SQLite in `make test` and on PostgreSQL in the second run of .ci/run."""

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from checklist.audit import audit_record
from checklist.chain import (
    GENESIS,
    _columns,
    chain_flush,
    chain_head,
    chained_models,
    content_sha256,
    link_mac,
    verify,
)
from checklist.models import Item, Release
from checklist.models_audit import AuditChainEntry
from checklist.triggers import purge_allowed
from signoffs.choices import SignatureMeaning
from signoffs.models import Signature, SignatureEvent
from tests.factories import ReleaseFactory, SignoffRequirementFactory, UserFactory

pytestmark = pytest.mark.django_db

HistoricalRelease = Release.history.model


@pytest.fixture
def chained(append_only):
    """A few releases, audit events and a signature, all linked (as at a commit)."""
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
    SignatureEvent.objects.create(
        signature=signature, from_state="", to_state="valid", at=signature.signed_at, reason="x"
    )
    assert chain_flush() >= 9
    assert verify() == (AuditChainEntry.objects.count(), None)
    return releases, signature


def _broken(anchor=None) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit", *(["--anchor", str(anchor)] if anchor else []))
    return str(refused.value)


def _link_of(row) -> AuditChainEntry:
    return AuditChainEntry.objects.get(table=type(row)._meta.db_table, row_pk=row.pk)


def _copy_of(row):
    """A history row inserted straight into its table (no signal): what a forger can do."""
    model = type(row)
    values = model.objects.filter(pk=row.pk).values().get()
    values.pop(model._meta.pk.attname)
    model.objects.bulk_create([model(**{**values, "name": "Approved by nobody"})])
    return model.objects.order_by("-pk").first()


# ---------------------------------------------------------------- linking
def test_chain_links_every_protected_row_once_when_flushed(chained, capsys):
    assert chain_flush() == 0
    seqs = list(AuditChainEntry.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert AuditChainEntry.objects.order_by("seq").first().prev_mac == GENESIS
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"Audit chain intact: {len(seqs)} links verified." in out
    assert "Audit trail intact." in out


@pytest.mark.django_db(transaction=True)
def test_chain_links_the_rows_of_a_transaction_before_it_commits_and_not_before():
    with transaction.atomic():
        release = ReleaseFactory()
        event = audit_record("logout", username="dana")
        assert not AuditChainEntry.objects.exists()  # marked, linked at COMMIT
    assert _link_of(HistoricalRelease.objects.get(id=release.pk)) and _link_of(event)
    assert chain_head()["seq"] == 2
    assert verify()[1] is None


@pytest.mark.django_db(transaction=True)
def test_chain_commits_nothing_when_linking_fails_inside_the_transaction(monkeypatch):
    import checklist.chain as chain

    def refuse(using, marks):
        raise RuntimeError("the chain could not be appended to")

    monkeypatch.setattr(chain, "_link", refuse)
    with pytest.raises(RuntimeError), transaction.atomic():
        ReleaseFactory(name="Never committed")
    assert not Release.objects.filter(name="Never committed").exists()
    assert not HistoricalRelease.objects.filter(name="Never committed").exists()


@pytest.mark.django_db(transaction=True)
def test_chain_forgets_the_marks_of_a_rolled_back_transaction():
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        ReleaseFactory()
        raise ZeroDivisionError
    assert connection.tx_state == {}
    with transaction.atomic():
        event = audit_record("logout", username="dana")
    assert list(AuditChainEntry.objects.values_list("row_pk", flat=True)) == [event.pk]


@pytest.mark.django_db(transaction=True)
def test_chain_never_links_a_row_written_past_the_portal_and_verify_audit_names_it():
    from checklist.tasks import chain_anchor

    with transaction.atomic():
        release = ReleaseFactory()
    forged = _copy_of(HistoricalRelease.objects.get(id=release.pk))  # committed, no signal
    with transaction.atomic():
        audit_record("logout", username="dana")  # another transaction commits after it
    chain_anchor()  # the beat task: anchors, never adopts
    assert not AuditChainEntry.objects.filter(
        table=HistoricalRelease._meta.db_table, row_pk=forged.pk
    ).exists()
    message = _broken()
    assert f"{HistoricalRelease._meta.db_table} #{forged.pk}" in message
    assert "not written by the portal" in message


def test_chain_links_bulk_imported_history_in_one_pass_with_bounded_queries(
    django_assert_max_num_queries,
):
    from signoffs.documents import release_import

    text = (Path(__file__).resolve().parents[1] / "data" / "second_checklist.md").read_text()
    release_import(text=text, source_name="second_checklist.md")
    marked = sum(len(keys) for keys in connection.tx_state["audit_chain_marks"].values())
    with django_assert_max_num_queries(len(chained_models()) * 2 + 6):
        linked = chain_flush()
    assert linked == marked >= 10
    assert Item.history.filter(history_id__in=[]).count() == 0
    assert verify()[1] is None


def test_m2m_history_and_bulk_imported_rows_are_linked_when_flushed():
    from signoffs.documents import release_import
    from tests.factories import CriterionFactory, ItemFactory

    text = (Path(__file__).resolve().parents[1] / "data" / "second_checklist.md").read_text()
    release = release_import(text=text, source_name="second_checklist.md")
    criterion = CriterionFactory(release=release)
    criterion.items.add(ItemFactory(release=release))
    chain_flush()

    item_history = Item.history.filter(release_id=release.pk)
    m2m_history = apps.get_model("signoffs", "HistoricalCriterion_items").objects.all()
    assert item_history.count() >= 3 and m2m_history.exists()
    for row in [*item_history, *m2m_history]:
        assert _link_of(row)
    assert chain_flush() == 0


def test_signature_state_change_keeps_the_audit_trail_intact_when_revoked_properly(chained):
    from signoffs.services import signature_revoke

    _, signature = chained
    signature_revoke(signature=signature, by=signature.signer, reason="wrong build")
    chain_flush()
    call_command("verify_audit")


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
    assert f"link {saved['seq']} is missing" in message and "truncated" in message


def test_verify_audit_detects_a_rewritten_chain_against_the_anchor(chained, tmp_path):
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({**chain_head(), "mac": "f" * 64}))
    assert "differs from the anchor" in _broken(anchor)


def test_verify_audit_refuses_an_unreadable_anchor(chained, tmp_path):
    assert "Cannot read the anchor" in _broken(tmp_path / "missing.json")


def test_chain_refuses_to_append_when_another_key_is_configured(chained, settings):
    from checklist.chain_keys import ChainKeyMismatch, _verified

    head = chain_head()
    settings.AUDIT_CHAIN_KEY = "another deployment's key"
    _verified.clear()
    audit_record("logout", username="dana")
    with pytest.raises(ChainKeyMismatch, match="not the key|another key|AUDIT_CHAIN_KEY"):
        chain_flush()
    assert chain_head() == head
