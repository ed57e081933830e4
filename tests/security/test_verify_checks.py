"""What verify_audit checks beyond the chain walk: the anchor log (exported on beat), rows the
portal did not write, live rows against their latest history, and signature states against
their events. Unmarked: SQLite in `make test`, PostgreSQL in the second run of .ci/run; the same
tampering as the runtime role is in test_chain_runtime.py."""

import json

import pytest
from django.core.management import CommandError, call_command

from checklist.anchors import anchor_append, anchors_read
from checklist.audit import audit_record
from checklist.chain import chain_flush, chain_head, chained_models
from checklist.models import Item
from checklist.models_audit import AuditChainEntry
from checklist.tasks import chain_anchor
from checklist.triggers import purge_allowed
from signoffs.choices import SignatureState
from signoffs.models import Signature
from tests.factories import ItemFactory, ReleaseFactory

pytestmark = pytest.mark.django_db


def _problems() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit")
    return str(refused.value)


@pytest.fixture
def signed(append_only, review, password):
    """A release in review with one valid signature given through the service, all linked."""
    from signoffs.services import signature_give

    requirement = review[1]["QA Lead"]
    signature = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning="approved",
    )
    chain_flush()
    call_command("verify_audit")
    return signature


# ---------------------------------------------------------------- the anchor log
def test_chain_anchor_task_appends_the_head_only_when_the_chain_moved(settings, append_only):
    ReleaseFactory()
    chain_flush()
    assert chain_anchor() == chain_head()["seq"]
    assert chain_anchor() is None  # nothing new: nothing appended
    audit_record("logout", username="dana")
    chain_flush()
    assert chain_anchor() == chain_head()["seq"]
    heads = anchors_read(settings.AUDIT_ANCHOR_LOG)
    assert [h["seq"] for h in heads] == sorted({h["seq"] for h in heads}) and len(heads) == 2
    assert heads[-1]["mac"] == chain_head()["mac"] and heads[-1]["exported_at"]


def test_chain_anchor_task_logs_the_head_and_an_unlinked_row(append_only, caplog):
    release = ReleaseFactory()
    chain_flush()
    history = type(release).history.model
    values = history.objects.filter(id=release.pk).values().get()
    values.pop("history_id")
    history.objects.bulk_create([history(**values)])  # no signal: never linked
    with caplog.at_level("INFO"):
        chain_anchor()
    assert "audit chain head: link" in caplog.text
    assert "not written by the portal" in caplog.text


def test_verify_audit_detects_deleted_newest_rows_from_the_anchor_log_alone(append_only):
    ReleaseFactory.create_batch(3)
    chain_flush()
    anchor_append_head = chain_anchor()
    assert anchor_append_head
    tables = {m._meta.db_table: m for m in chained_models()}
    with purge_allowed():  # the newest rows and their links go, as an owner could do
        for link in list(AuditChainEntry.objects.order_by("-seq")[:2]):
            tables[link.table].objects.filter(pk=link.row_pk).delete()
            AuditChainEntry.objects.filter(pk=link.pk).delete()
    message = _problems()  # no --anchor given: the configured anchor log is read
    assert f"link {anchor_append_head} is missing" in message and "truncated" in message


def test_verify_audit_detects_an_anchor_log_that_goes_back(settings, append_only):
    ReleaseFactory.create_batch(2)
    chain_flush()
    chain_anchor()
    head = chain_head()
    with settings.AUDIT_ANCHOR_LOG.open("a") as log:
        log.write(json.dumps({"seq": head["seq"] - 1, "mac": "0" * 64}) + "\n")
    assert "the series goes back" in _problems()


def test_anchor_append_writes_nothing_when_the_log_already_holds_the_head(tmp_path, append_only):
    ReleaseFactory()
    chain_flush()
    path = tmp_path / "anchors.jsonl"
    assert anchor_append(path)["seq"] == chain_head()["seq"]
    assert anchor_append(path) is None
    assert len(path.read_text().splitlines()) == 1


def test_verify_audit_refuses_an_anchor_log_line_that_is_not_a_head(settings, append_only):
    settings.AUDIT_ANCHOR_LOG.write_text('{"seq": 1, "mac": "x"}\nnot json\n')
    with pytest.raises(CommandError, match="audit_anchors.jsonl:2: not a JSON chain head"):
        call_command("verify_audit")


# ---------------------------------------------------------------- live rows and signatures
def test_verify_audit_names_an_item_edited_by_sql(append_only):
    item = ItemFactory(actual_text="")
    chain_flush()
    call_command("verify_audit")
    Item.objects.filter(pk=item.pk).update(actual_text="350 ms")  # as the runtime role could
    message = _problems()
    assert f"checklist_item #{item.pk}: differs from its latest history entry in actual_text" in (
        message
    )
    assert "changed outside the portal" in message and f"checklist_item #{item.pk}" in message


def test_verify_audit_names_a_row_inserted_or_deleted_without_history(append_only):
    item = ItemFactory()
    chain_flush()
    Item.objects.bulk_create([Item(release=item.release, section=item.section, text="forged")])
    forged = Item.objects.get(text="forged")
    assert f"checklist_item #{forged.pk}: has no history: written outside the portal" in (
        _problems()
    )
    Item.objects.filter(pk=forged.pk)._raw_delete(Item.objects.db)
    Item.objects.filter(pk=item.pk)._raw_delete(Item.objects.db)
    assert f"checklist_item #{item.pk}: deleted without a history entry" in _problems()


def test_verify_audit_names_a_signature_whose_state_was_set_by_sql(signed):
    Signature.objects.filter(pk=signed.pk).update(state=SignatureState.REVOKED)
    message = _problems()
    assert "signature states:" in message
    assert f"signoffs_signature #{signed.pk}: state 'revoked' but its events say 'valid'" in (
        message
    )


def test_verify_audit_names_a_revoked_signature_made_valid_again_by_sql(signed):
    from signoffs.services import signature_revoke

    signature_revoke(signature=signed, by=signed.signer, reason="wrong build")
    chain_flush()
    call_command("verify_audit")
    Signature.objects.filter(pk=signed.pk).update(state=SignatureState.VALID)
    message = _problems()
    assert f"signoffs_signature #{signed.pk}: state 'valid' but its events say 'revoked'" in (
        message
    )


def test_verify_audit_passes_after_a_whole_journey_through_the_services(signed, review):
    from signoffs.services import signature_revoke

    item = review[0].items.get()
    item.actual_text = "done"
    item._change_reason = "measured"
    item.save()  # material: the signature goes stale, with its event
    signed.refresh_from_db()
    assert signed.state == SignatureState.STALE
    signature_revoke(signature=signed, by=signed.signer, reason="superseded")
    audit_record("logout", username="dana")
    chain_flush()
    call_command("verify_audit")


def test_verify_audit_names_a_criterion_link_added_by_sql(append_only):
    from signoffs.models import Criterion
    from tests.factories import CriterionFactory

    criterion = CriterionFactory()
    linked = ItemFactory(release=criterion.release)
    criterion.items.add(linked)
    chain_flush()
    call_command("verify_audit")
    forged = ItemFactory(release=criterion.release)
    chain_flush()
    Criterion.items.through.objects.bulk_create(  # as the runtime role may INSERT a link
        [Criterion.items.through(criterion_id=criterion.pk, item_id=forged.pk)]
    )
    message = _problems()
    assert f"the items of signoffs_criterion #{criterion.pk} differ from its latest history" in (
        message
    )


def test_chain_anchor_task_logs_an_error_when_the_chain_head_went_back(append_only, caplog):
    ReleaseFactory.create_batch(2)
    chain_flush()
    anchored = chain_anchor()
    with purge_allowed():
        AuditChainEntry.objects.filter(seq=anchored).delete()
    with caplog.at_level("ERROR"):
        assert chain_anchor() is None
    assert f"holds link {anchored}: the chain was truncated" in caplog.text


def test_verify_audit_reports_a_missing_anchor_log_when_in_production(settings, append_only):
    settings.DJANGO_SECURE = True
    assert "no anchor log at" in _problems()
