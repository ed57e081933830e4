"""Fixtures for the decision-record tests: a signing key pair under a temporary folder, a
decided release with its record, and text that must stay literal in the PDF."""

from __future__ import annotations

import io

import pytest
from django.test import RequestFactory
from pypdf import PdfReader

from signoffs.models import DecisionRecord
from signoffs.records import record_render
from signoffs.services import release_access_refresh, signature_give
from signoffs.signing_cert import ensure_signing_cert
from tests.factories import (
    ActionItemFactory,
    CriterionFactory,
    ItemFactory,
    RiskFactory,
    SectionFactory,
)

HOSTILE = (
    "Release <b>blocked",
    '<a href="javascript:alert(1)">x</a>',
    '<img src="/etc/hosts"/>',
    "R&D <200ms>",
)
UNICODE = ("Проверка выпуска", "Έλεγχος ποιότητας", "Café crème naïve Ångström")


@pytest.fixture(scope="session")
def signing_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signing")
    key, cert = folder / "key.pem", folder / "cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    return key, cert


@pytest.fixture
def signing(settings, signing_pair):
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = map(str, signing_pair)
    return signing_pair


def decide(release, roles, password, *, meaning="defer", comment="Security audit outstanding"):
    """The two approvals, then the CEO's final decision; returns the new (pending) record."""
    release_access_refresh(release=release, user=release.owner)  # the PM manages it
    for role in ("QA Lead", "Security Officer"):
        requirement = roles[role]
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning="approved",
            comment=f"{role} checked",
            request=RequestFactory().post("/"),
        )
    ceo = roles["CEO"]
    signature_give(
        requirement=ceo,
        user=ceo.assignee,
        username=ceo.assignee.username,
        password=password,
        meaning=meaning,
        comment=comment,
        request=RequestFactory().post("/"),
    )
    return (
        DecisionRecord.objects.filter(release=release, signature__requirement=ceo)
        .order_by("-created_at", "-pk")
        .first()
    )


@pytest.fixture
def content(review):
    """Sections, risks and actions on the review's release, hostile and Unicode text included."""
    release, _ = review
    release_access_refresh(release=release, user=release.owner)  # the PM manages it
    section = SectionFactory(release=release, number="2", title="Quality", category="Testing")
    failing = ItemFactory(section=section, text="Error rate", failing=True, owner_label="QA Lead")
    CriterionFactory(release=release, kind="go", group="Quality", text="Targets met").items.add(
        failing
    )
    CriterionFactory(release=release, kind="no_go", group="", text="Open critical CVE")
    for text in HOSTILE:
        ItemFactory(section=section, text=text, owner_label="R&D <team>")
    for status, text in zip(("complete", "in_progress", "blocked"), UNICODE, strict=True):
        ItemFactory(section=section, text=text, status=status)
    ItemFactory(section=section, text="Watch closely", status="at_risk")
    RiskFactory(release=release, key="R-001", title="Database failover untested")
    RiskFactory(release=release, key="R-002", title="Vendor delay", impact="LOW", probability="LOW")
    ActionItemFactory(
        release=release, key="A-001", action="Book the pen test", due_date="2020-01-01"
    )
    return release


@pytest.fixture
def decided(review, content, password, signing):
    """The release decided (DEFER by the CEO) and its record rendered and sealed."""
    release, roles = review
    record = decide(release, roles, password)
    return release, record_render(record_id=record.pk)


def pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]
