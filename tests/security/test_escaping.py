"""Every user string escaped where it is shown (ASVS 5.3.1, 5.3.3), for the places the other
tests do not already cover with markup: the daily digest's every field (HTML escaped, plain
text as typed), every free-text column of the item changelist, the decision-record list, and a
download's audit event in the audit admin. The PDF (tests/signoffs/test_pdf.py), the dashboard
(tests/signoffs/test_dashboard_views.py), the sign page and the CSV formula prefixes
(test_csv_export.py) have their own tests; docs/security.md lists them all."""

import pytest
from django.urls import reverse

from checklist.models_audit import AuditEvent
from signoffs.models import DecisionRecord
from signoffs.reminder_services import digest_render
from signoffs.reminders import digest_for
from tests.factories import (
    ActionItemFactory,
    ItemFactory,
    SectionFactory,
    SignoffRequirementFactory,
)
from tests.signoffs.record_fixtures import decide
from tests.signoffs.reminder_helpers import BASE_URL, DAY, person, release_in_review

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def test_digest_escapes_every_user_field_in_html_and_keeps_text_as_typed_when_markup(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    pm, dev = person("pm"), person("dev")
    dev.first_name = XSS
    dev.save()
    release, section = release_in_review(pm, name=f"Release {XSS}")
    section.title = XSS
    section.save()
    ItemFactory(section=section, owner=dev, text=f"Item {XSS}")
    ActionItemFactory(release=release, owner=dev, action=f"Action {XSS}")
    SignoffRequirementFactory(release=release, role=f"Role {XSS}", assignee=dev)

    subject, text, html = digest_render(digest_for(recipient_id=dev.pk, release=release, date=DAY))

    assert "<script" not in html
    for shown in (f"Hello {ESCAPED}", f"Release {ESCAPED}", f"Item {ESCAPED}", f"Role {ESCAPED}"):
        assert shown in html, shown
    assert f"Action {ESCAPED}" in html
    for typed in (f"Hello {XSS}", f"Release {XSS}", f"Item {XSS}", f"Action {XSS}"):
        assert typed in text, typed  # text/plain is not HTML: as typed, never entity-encoded
    assert "&lt;" not in text and "&quot;" not in text
    assert "\n" not in subject and XSS in subject


def test_item_changelist_escapes_every_free_text_column_when_they_hold_markup(admin_client):
    section = SectionFactory(title=XSS)
    ItemFactory(section=section, text=XSS, owner_label=XSS, actual_text=XSS, key="K-1")

    html = admin_client.get(reverse("admin:checklist_item_changelist")).content.decode()

    assert XSS not in html
    assert html.count(ESCAPED) >= 3  # item, owner label, section, actual text


def test_decision_record_list_escapes_release_name_and_failure_reason_when_markup(
    client, review, password
):
    release, roles = review
    release.name = XSS
    release.save()
    record = decide(release, roles, password)
    DecisionRecord.objects.filter(pk=record.pk).update(state="failed", failure_reason=XSS)
    client.force_login(release.owner)

    html = client.get(reverse("admin:signoffs_decisionrecord_changelist")).content.decode()

    assert XSS not in html
    assert html.count(ESCAPED) >= 2  # the release column and the failure reason


def test_audit_admin_escapes_a_download_event_when_the_release_name_holds_markup(
    admin_client, admin_user, review
):
    release, _ = review
    release.name = XSS
    release.save()
    assert (
        admin_client.get(
            reverse("admin:signoffs_decisionrecord_draft", args=[release.pk])
        ).status_code
        == 200
    )
    event = AuditEvent.objects.get(kind="record_download", actor=admin_user)
    assert XSS in event.object_repr  # stored as it is, escaped when shown

    html = admin_client.get(reverse("admin:checklist_auditevent_changelist")).content.decode()
    assert XSS not in html and ESCAPED in html
    page = reverse("admin:checklist_auditevent_change", args=[event.pk])
    html = admin_client.get(page).content.decode()
    assert XSS not in html and ESCAPED in html
