"""The decision record list at 1280 px: the auditor sees the download link without scrolling
sideways, with the admin's navigation sidebar open as it is by default."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from signoffs.choices import SignatureMeaning
from signoffs.models import DecisionRecord
from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = """() => {
    const page = document.documentElement;
    const results = document.querySelector('#result_list');
    const box = results.parentElement;
    return {
        page: page.scrollWidth - page.clientWidth,
        table: results.getBoundingClientRect().right - box.getBoundingClientRect().right,
    };
}"""


@pytest.fixture(scope="session")
def record_signing_pair(tmp_path_factory):
    from signoffs.signing_cert import ensure_signing_cert

    folder = tmp_path_factory.mktemp("record-list-signing")
    key, cert = folder / "key.pem", folder / "cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    return key, cert


def _sign(requirement, meaning: str) -> None:
    from signoffs.services import signature_give

    signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=PASSWORD,
        meaning=meaning,
        comment=f"{requirement.role}: the evidence is attached to every item of the release",
        request=RequestFactory().post("/"),
    )


def test_record_list_shows_download_link_without_horizontal_scroll_when_1280px_wide(
    open_session, cast, browser_settings, record_signing_pair
):
    from signoffs.records import record_render

    browser_settings.DECISION_SIGNING_KEY, browser_settings.DECISION_SIGNING_CERT = map(
        str, record_signing_pair
    )
    _sign(cast.roles["QA Lead"], SignatureMeaning.APPROVED)
    _sign(cast.roles["Security Officer"], SignatureMeaning.APPROVED)
    _sign(cast.roles["CEO"], SignatureMeaning.DEFER)
    record = DecisionRecord.objects.get(release=cast.release)
    record_render(record_id=record.pk)

    auditor = open_session()
    auditor.goto("/admin/signoffs/decisionrecord/")
    auditor.login("auditor")
    auditor.page.wait_for_load_state("load")
    assert auditor.page.locator("#nav-sidebar").is_visible()  # the default layout
    link = auditor.page.get_by_role("link", name="Download (sealed PDF)")
    link.wait_for()
    auditor.shot("record-list-1280")
    overflow = auditor.page.evaluate(OVERFLOW)
    assert overflow["page"] <= 0, overflow
    assert overflow["table"] <= 1, overflow
    right = link.bounding_box()["x"] + link.bounding_box()["width"]
    assert right <= 1280, right
