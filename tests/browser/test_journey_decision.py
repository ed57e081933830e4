"""Journey 3, the final decision and the auditor: the CEO is refused GO with every reason, records
DEFER with a reason; after a reopen and a new review in which everything holds, records GO; the
auditor downloads the sealed decision record and the downloaded file passes `verify_record`."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from checklist.choices import ReleaseStatus
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import Criterion, DecisionRecord, Signature
from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def signing_pair(tmp_path_factory):
    from signoffs.signing_cert import ensure_signing_cert

    folder = tmp_path_factory.mktemp("signing")
    key, cert = folder / "key.pem", folder / "cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    return key, cert


@pytest.fixture
def worker(browser_settings, signing_pair):
    """The record is rendered and sealed as the worker would, in the request's on_commit (the
    Celery app runs tasks eagerly for this test), with a throwaway signing pair."""
    from dcmms_release.celery import app

    browser_settings.DECISION_SIGNING_KEY, browser_settings.DECISION_SIGNING_CERT = map(
        str, signing_pair
    )
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def _choose_and_sign(page, meaning: str, comment: str = "", user_id: str = "") -> None:
    """``user_id``: typed at the first signing of a session (§11.200(a)(1)); later ones in the
    same session show no User ID field."""
    page.get_by_label(meaning, exact=True).check()
    page.get_by_label("Comment").fill(comment)
    if user_id:
        page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_load_state()


def _approve(requirement) -> None:
    """A stakeholder's approval (their own journey is test_journey_stakeholder)."""
    from signoffs.services import signature_give

    signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=PASSWORD,
        meaning=SignatureMeaning.APPROVED,
        comment=f"{requirement.role} checked",
        request=RequestFactory().post("/"),
    )


def _verify_record(path) -> str:
    """`manage.py verify_record FILE` as the auditor runs it. Its seal check runs its own event
    loop, which cannot start in this thread (Playwright's loop runs here): a worker thread runs
    the command, on its own database connection."""

    def run() -> str:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("verify_record", str(path), stdout=out, stderr=err)
        except Exception as error:  # CommandError: the command's own refusal
            return f"{out.getvalue()}{err.getvalue()}FAILED: {error}"
        finally:
            connection.close()
        return out.getvalue()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=60)


def test_decision_journey_refuses_go_defers_then_goes_and_record_verifies(
    open_session, cast, worker, tmp_path
):
    from signoffs.services import criterion_set_verdict

    release, ceo_requirement = cast.release, cast.roles["CEO"]
    sign_url = reverse("admin:signoffs_signoffrequirement_sign", args=[ceo_requirement.pk])
    release_url = reverse("admin:checklist_release_change", args=[release.pk])
    ceo = open_session()
    page = ceo.page

    # The CEO opens their sign page: GO is not possible yet, and the page says why.
    ceo.goto(release_url)
    ceo.login("ceo")
    ceo.hide_nav()
    page.locator("table.signoff-matrix tbody tr", has_text="Final decision").get_by_role(
        "link", name="Sign-off page"
    ).click()
    page.wait_for_url(re.compile(re.escape(sign_url) + "$"))
    gate = page.locator("ul.go-refusals").inner_text()
    assert "Missing valid sign-off: QA Lead" in gate
    assert "Missing valid sign-off: Security Officer" in gate

    # Choosing GO anyway (the session's first signing: user ID and password): refused with the
    # list of reasons; nothing is written.
    assert page.get_by_label("User ID").is_visible()
    _choose_and_sign(page, "GO", user_id="ceo")
    refusals = page.locator(".sign-errors").inner_text()
    for reason in (
        "Missing valid sign-off: QA Lead",
        "Missing valid sign-off: Security Officer",
        "GO criterion not met: Functional Completeness — All P0 features demo-ready",
    ):
        assert reason in refusals
    assert not Signature.objects.exists()
    ceo.shot_of("section.sign-form", "journey-decision-go-refused")

    # DEFER, with a reason: recorded, and the release is decided.
    _choose_and_sign(page, "DEFER", "Security audit outstanding", user_id="ceo")
    assert (
        "Signed as CEO: DEFER by Cora Executive"
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    defer = Signature.objects.get(meaning=SignatureMeaning.DEFER)
    assert defer.comment == "Security audit outstanding"

    # The PM reopens the release (with a reason): it is in review again.
    pm = open_session()
    pm.goto(release_url)
    pm.login("pm")
    pm.page.get_by_role("link", name="Reopen…").click()
    pm.page.get_by_label("Why reopen?").fill("Security audit passed; deciding again.")
    pm.page.get_by_role("button", name="Reopen the release").click()
    assert (
        "release is in review again"
        in pm.page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW
    defer.refresh_from_db()
    assert defer.state == SignatureState.STALE

    # Everything now holds: the criterion is met and the other roles approve.
    criterion_set_verdict(
        criterion=Criterion.objects.get(release=release), verdict=True, by=cast.pm
    )
    _approve(cast.roles["QA Lead"])
    _approve(cast.roles["Security Officer"])

    # The CEO sees GO possible and records it.
    ceo.goto(sign_url)
    assert "GO is possible" in page.locator("section.sign-gate").inner_text()
    ceo.shot("journey-decision-go-possible")
    # A later signing in the same session: the password only.
    assert page.get_by_label("User ID").count() == 0
    _choose_and_sign(page, "GO", "All criteria met; approved for production.")
    page.wait_for_url(re.compile(rf"{re.escape(release_url)}$"))
    assert (
        "Signed as CEO: GO by Cora Executive"
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    ceo.shot_of("table.signoff-matrix", "journey-decision-matrix")

    # The auditor finds the sealed record of the GO decision and downloads it.
    auditor = open_session()
    auditor.goto(release_url)
    auditor.login("auditor")
    auditor.page.get_by_role("link", name="Decision records").first.click()
    auditor.page.wait_for_url(re.compile(r"/admin/signoffs/decisionrecord/"))
    row = auditor.page.locator("#result_list tbody tr", has_text="GO by Cora Executive")
    row.wait_for()
    assert row.count() == 1
    auditor.shot("journey-auditor-records")
    with auditor.page.expect_download() as download_info:
        row.get_by_role("link", name="Download (sealed PDF)").click()
    download = download_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    record = DecisionRecord.objects.get(signature__meaning=SignatureMeaning.GO)
    assert download.suggested_filename == f"decision-record-{release.version}-{record.pk}.pdf"

    # Offline, the downloaded file verifies: seal, stored record, fingerprint.
    report = _verify_record(path)
    assert f"{path.name}: OK" in report, report
    assert "Decision: GO by Cora Executive" in report

    # A single byte changed: the same command refuses it.
    tampered = tmp_path / "tampered.pdf"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    report = _verify_record(tampered)
    assert "NOT verified" in report and "MISMATCH" in report, report

    for session in (ceo, pm, auditor):
        assert session.csp_violations() == []
