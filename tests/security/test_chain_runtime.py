"""On PostgreSQL, tampering as the runtime role — the login the portal itself uses, which may
INSERT everywhere, UPDATE ordinary tables and a signature's state — is reported by verify_audit:
a row it inserts is never linked, an item it edits differs from its history, a signature whose
state it sets differs from the replay of its events."""

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from checklist.models import Item, Release
from checklist.tasks import chain_anchor
from signoffs.choices import SignatureState
from tests.factories import ItemFactory, ReleaseFactory
from tests.security.test_runtime_role import runtime  # noqa: F401  (the runtime-role connection)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _problems() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit")
    return str(refused.value)


def test_runtime_role_inserted_history_row_is_never_linked_and_is_reported(runtime):  # noqa: F811
    with transaction.atomic():
        release = ReleaseFactory(name="Release 2")
    call_command("verify_audit")
    table = Release.history.model._meta.db_table
    runtime.execute(
        f'INSERT INTO "{table}" (id, project, name, version, sprint, document_version, '
        "go_no_go_label, owner_label, approvers_label, review_frequency, review_cadence, "
        "next_review, status, source_name, created_at, history_date, history_type, "
        "history_change_reason) SELECT id, project, 'Approved by nobody', version, sprint, "
        "document_version, go_no_go_label, owner_label, approvers_label, review_frequency, "
        "review_cadence, next_review, 'decided', source_name, created_at, now(), '~', 'forged' "
        f'FROM "checklist_release" WHERE id = %s',
        [release.pk],
    )
    with transaction.atomic():  # later portal writes and the beat's anchor do not adopt it
        ReleaseFactory()
    chain_anchor()
    forged = Release.history.model.objects.get(history_change_reason="forged")
    message = _problems()
    assert f"{table} #{forged.pk}: has no link in the audit chain: not written by the portal" in (
        message
    )


def test_runtime_role_sql_edits_of_items_and_signature_states_are_reported(
    runtime,  # noqa: F811
    review,
    password,
):
    from signoffs.services import signature_give

    release, roles = review
    requirement = roles["QA Lead"]
    with transaction.atomic():
        item = ItemFactory(release=release, actual_text="")
    signature = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning="approved",
    )
    call_command("verify_audit")
    runtime.execute("UPDATE checklist_item SET actual_text = '180 ms' WHERE id = %s", [item.pk])
    runtime.execute(
        "UPDATE signoffs_signature SET state = %s WHERE id = %s",
        [SignatureState.REVOKED, signature.pk],
    )
    assert Item.objects.get(pk=item.pk).actual_text == "180 ms"  # the role could do it
    message = _problems()
    assert f"checklist_item #{item.pk}: differs from its latest history entry" in message
    assert f"signoffs_signature #{signature.pk}: state 'revoked' but its events say" in message
