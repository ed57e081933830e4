"""Every model registered in the admin: its changelist, add page, change page and history page
answer a superuser (add is refused, 403, where the admin forbids adding: the signature record)."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from checklist.models_audit import AuditEvent, AuditPurge
from signoffs.choices import MemberRole, SignatureMeaning
from signoffs.models import DecisionRecord, ReleaseMember, ReminderDispatch, Signature
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


def _signature():
    requirement = SignoffRequirementFactory()
    return Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=UserFactory(),
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.APPROVED,
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )


def _decision_record():
    signature = _signature()
    return DecisionRecord.objects.create(
        release=signature.release, signature=signature, snapshot_json="{}", snapshot_sha256="0" * 64
    )


MAKERS = {
    "auth.Group": lambda: Group.objects.create(name="reviewers"),
    "auth.User": UserFactory,
    "checklist.Release": ReleaseFactory,
    "checklist.Section": SectionFactory,
    "checklist.Item": lambda: ItemFactory(failing=True),
    "risks.Risk": RiskFactory,
    "risks.ActionItem": ActionItemFactory,
    "signoffs.SignoffRequirement": SignoffRequirementFactory,
    "signoffs.Attestation": AttestationFactory,
    "signoffs.Criterion": CriterionFactory,
    "signoffs.Signature": _signature,
    "signoffs.ReleaseMember": lambda: ReleaseMember.objects.create(
        release=ReleaseFactory(), user=UserFactory(), role=MemberRole.AUDITOR
    ),
    "signoffs.DecisionRecord": _decision_record,
    "signoffs.ReminderDispatch": lambda: ReminderDispatch.objects.create(
        recipient=UserFactory(), release=ReleaseFactory(), date=timezone.localdate()
    ),
    "checklist.AuditEvent": lambda: AuditEvent.objects.create(kind="login", username="dana"),
    "checklist.AuditPurge": lambda: AuditPurge.objects.create(
        cutoff=timezone.now(),
        event=AuditEvent.objects.create(kind="purge", username="ops"),
        purged={"checklist_item": [[1, 3]]},
    ),
    "axes.AccessAttempt": lambda: AccessAttempt.objects.create(
        username="dana", ip_address="192.0.2.1", user_agent="", failures_since_start=1
    ),
    "axes.AccessLog": lambda: AccessLog.objects.create(
        username="dana", ip_address="192.0.2.1", user_agent=""
    ),
    "axes.AccessFailureLog": lambda: AccessFailureLog.objects.create(
        username="dana", ip_address="192.0.2.1", user_agent="", locked_out=False
    ),
}
REGISTERED = sorted(model._meta.label for model in admin.site._registry)


def test_admin_smoke_knows_how_to_make_every_registered_model_when_run():
    assert sorted(MAKERS) == REGISTERED


@pytest.mark.parametrize("label", REGISTERED)
@pytest.mark.django_db
def test_admin_pages_answer_a_superuser_when_a_row_exists(admin_client, admin_user, label):
    obj = MAKERS[label]()
    model = type(obj)
    model_admin = admin.site._registry[model]
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    request = RequestFactory().get("/")
    request.user = admin_user

    pages = {
        "changelist": reverse(f"{info}_changelist"),
        "change": reverse(f"{info}_change", args=[obj.pk]),
        "history": reverse(f"{info}_history", args=[obj.pk]),
    }
    for page, url in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, f"{label} {page}: {response.status_code}"

    add = admin_client.get(reverse(f"{info}_add"))
    assert add.status_code == (200 if model_admin.has_add_permission(request) else 403)
