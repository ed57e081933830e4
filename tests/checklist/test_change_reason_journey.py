"""A whole journey — import the seed, set up the demo (roles, review, signatures, a decision and
its sealed record), edit in the admin, a bulk action, deletions, import --replace, a revocation,
a reopen and the daily digests — leaves no history row of any audited model without a reason.

The backstop's derivation is switched off here, so every reason counted was named by the path
that wrote the row (test_change_reason.py tests the backstop itself)."""

from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from checklist import change_reasons
from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk
from signoffs.choices import SignatureState
from signoffs.models import Criterion, Signature
from signoffs.services import release_reopen, signature_revoke
from tests.signoffs.record_fixtures import signing, signing_pair  # noqa: F401

SECOND_PATH = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
AUDITED_APPS = ("checklist", "risks", "signoffs")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing")]


def _history_models() -> list:
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in AUDITED_APPS
        and model.__name__.startswith("Historical")
        and any(field.name == "history_change_reason" for field in model._meta.fields)
    ]


def _command(*args: str) -> None:
    call_command(*args, stdout=StringIO(), stderr=StringIO())


def _form_data(client, url: str) -> dict:
    form = client.get(url).context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is not None and value is not False:
            data[name] = value
    return data


def _admin_edit(client, obj, reason: str, **changes) -> None:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    data = _form_data(client, url) | changes | {"change_reason": reason}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors


@pytest.fixture
def paths_only(monkeypatch):
    """No derived reasons: a row whose path named none keeps an empty reason."""
    monkeypatch.setattr(change_reasons, "derived_reason", lambda *args, **kwargs: "")


def _journey(client) -> None:
    # Imports the seed (fixtures/seed_checklist.md) as v0.3.0 and, again, as v0.2.0; owner,
    # accounts, roles, the review, signatures, and v0.2.0 decided with its sealed record.
    _command("setup_demo")
    release = Release.objects.get(version="v0.3.0")
    assert release.status == ReleaseStatus.IN_REVIEW

    items = Item.objects.filter(release=release).exclude(kind="group").order_by("pk")
    _admin_edit(client, items[0], "Vendor confirmed the fix", status=ItemStatus.COMPLETE)
    _admin_edit(client, Risk.objects.filter(release=release).first(), "Reassessed", note="x")
    criterion = Criterion.objects.filter(release=release).first()
    _admin_edit(client, criterion, "Decided by the load test", items=[items[1].pk])
    response = client.post(
        reverse("admin:checklist_item_changelist"),
        {"action": "mark_complete", "_selected_action": [i.pk for i in items[2:5]]},
    )
    assert response.status_code == 302
    action = ActionItem.objects.filter(release=release).first()
    delete = reverse("admin:risks_actionitem_delete", args=[action.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302

    _command("import_checklist", str(SECOND_PATH))
    _command("import_checklist", str(SECOND_PATH), "--replace")
    second = Release.objects.get(version="v2.0.0-rc.1")
    section = Section.objects.filter(release=second, parent=None).first()
    response = client.post(
        reverse("admin:checklist_section_changelist"),
        {"action": "delete_selected", "_selected_action": [section.pk], "post": "yes"},
    )
    assert response.status_code == 302

    signature = Signature.objects.filter(release=release, state=SignatureState.STALE).first()
    signature_revoke(signature=signature, by=signature.signer, reason="Signed the wrong build")
    decided = Release.objects.get(version="v0.2.0")
    release_reopen(release=decided, by=decided.owner, reason="Security audit finished")
    _command("send_review_reminders")


def test_journey_leaves_no_history_row_without_a_reason_when_every_path_names_its_own(
    admin_client, paths_only
):
    _journey(admin_client)

    rows = {model.__name__: model.objects.count() for model in _history_models()}
    unexplained = {
        model.__name__: list(
            model.objects.filter(history_change_reason__isnull=True).values_list(
                "history_type", flat=True
            )
        )
        + [
            history_type
            for history_type, reason in model.objects.values_list(
                "history_type", "history_change_reason"
            )
            if reason is not None and not reason.strip()
        ]
        for model in _history_models()
    }
    assert {name: found for name, found in unexplained.items() if found} == {}
    # The journey reached every audited model, so the check above covers each of them.
    assert {name for name, count in rows.items() if not count} == set(), rows
    reasons = set(Item.history.values_list("history_change_reason", flat=True))
    assert {"Vendor confirmed the fix", "Status set to Complete"} <= reasons
    assert "Deleted in the admin" in set(
        ActionItem.history.filter(history_type="-").values_list("history_change_reason", flat=True)
    )
