"""The signing certificate page (signoffs.admin_certificate): its SHA-256 for whoever may view
decision records, a PEM download recorded as a download, and the sealing certificate on a
record's admin page."""

import hashlib

import pytest
from cryptography import x509
from django.urls import reverse

from checklist.models_audit import AuditEvent
from signoffs.choices import MemberRole
from signoffs.services import member_set
from signoffs.signing_cert import configured_certificate, ensure_signing_cert
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "admin:signoffs_decisionrecord_certificate"
PEM = "admin:signoffs_decisionrecord_certificate_pem"


@pytest.fixture
def auditor(decided):
    release, _ = decided
    user = UserFactory(username="avery", staff=True)
    member_set(release=release, user=user, role=MemberRole.AUDITOR, by=release.owner)
    return user


def test_certificate_page_shows_the_sha256_printed_on_records_when_auditor_views_it(
    client, decided, auditor
):
    client.force_login(auditor)
    response = client.get(reverse(PAGE))
    assert response.status_code == 200
    body = response.content.decode()
    sha = configured_certificate().sha256
    assert f'<code id="certificate-sha256">{sha}</code>' in body
    assert "CN=dCMMS Release Portal decision records (development)" in body
    assert reverse(PEM) in body


def test_certificate_pem_download_is_the_certificate_and_is_audited_when_auditor_downloads(
    client, decided, auditor, signing
):
    client.force_login(auditor)
    response = client.get(reverse(PEM))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    cert = x509.load_pem_x509_certificate(response.content)
    assert cert == x509.load_pem_x509_certificate(signing[1].read_bytes())
    assert b"PRIVATE KEY" not in response.content
    event = AuditEvent.objects.get(kind="record_download", actor=auditor)
    assert event.detail["what"] == "decision-record signing certificate"
    assert event.detail["certificate_sha256"] == configured_certificate().sha256
    assert event.detail["sha256"] == hashlib.sha256(response.content).hexdigest()


@pytest.mark.parametrize("name", [PAGE, PEM])
def test_certificate_views_redirect_to_login_when_anonymous(client, decided, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", [PAGE, PEM])
def test_certificate_views_redirect_to_login_when_user_is_not_staff(client, decided, name):
    client.force_login(UserFactory())
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", [PAGE, PEM])
def test_certificate_views_answer_403_and_hand_out_nothing_when_staff_may_not_view_records(
    client, decided, name
):
    client.force_login(UserFactory(staff=True))
    assert client.get(reverse(name)).status_code == 403
    assert not AuditEvent.objects.filter(kind="record_download").exists()


def test_record_page_shows_the_sealing_certificate_sha256_when_auditor_opens_it(
    client, decided, auditor
):
    _, record = decided
    client.force_login(auditor)
    response = client.get(reverse("admin:signoffs_decisionrecord_change", args=[record.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"<code>{configured_certificate().sha256}</code>" in body
    assert "the configured signing certificate" in body and reverse(PAGE) in body


def test_record_page_says_not_the_configured_certificate_when_the_key_was_rotated(
    client, decided, auditor, settings, tmp_path
):
    _, record = decided
    sealed_with = configured_certificate().sha256
    key, cert = tmp_path / "new-key.pem", tmp_path / "new-cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(key), str(cert)
    client.force_login(auditor)
    body = client.get(
        reverse("admin:signoffs_decisionrecord_change", args=[record.pk])
    ).content.decode()
    assert f"<code>{sealed_with}</code>" in body
    assert "NOT the certificate configured now" in body
