"""No lost update in the admin (checklist.admin_version, issue #14 point 5): a change form carries
the signed version it was opened at; a save is refused, naming who changed the row, when and
why, when the row changed since — and nothing of the page is written."""

import re
import threading
import time

import pytest
from django.core import signing
from django.db import connection

from checklist import admin_version
from checklist.admin_version import VERSION_FIELD, token_version, version_token
from checklist.choices import ItemStatus
from checklist.models import Section
from checklist.services import items_set_status
from checklist.versions import NOT_VERIFIED, row_version
from signoffs.choices import MemberRole
from signoffs.services import member_set
from tests.checklist.version_fixtures import (
    change_url,
    client_of,
    desk_fixture,  # noqa: F401  (the desk fixture)
    inline_prefix,
    page_data,
)
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

XSS = "<b>bold</b>"

# One text field per change form, and the value each product manager types into it.
EDITS = {
    "release": ("name", "Release 2 (pm)", "Release 2 (pm2)"),
    "section": ("title", "Readiness (pm)", "Readiness (pm2)"),
    "item": ("text", "Load test (pm)", "Load test (pm2)"),
    "risk": ("title", "Rate limit (pm)", "Rate limit (pm2)"),
    "action": ("action", "Rotate keys (pm)", "Rotate keys (pm2)"),
    "requirement": ("role", "QA Lead (pm)", "QA Lead (pm2)"),
    "attestation": ("text", "All tests pass (pm)", "All tests pass (pm2)"),
    "criterion": ("text", "All P0 complete (pm)", "All P0 complete (pm2)"),
}


def _errors(response) -> list[str]:
    return list(response.context["adminform"].form.non_field_errors())


def _open_twice(desk, obj):
    """Both product managers open the same change page: their clients and their page data."""
    first, second = client_of(desk.pm), client_of(desk.pm2)
    url = change_url(obj)
    return url, (first, page_data(first.get(url))), (second, page_data(second.get(url)))


# ---------------------------------------------------------------- two people, one row
def test_item_form_refuses_the_second_save_naming_the_first_when_both_opened_one_version(desk):
    item = desk.rows["item"]
    url, (first, mine), (second, theirs) = _open_twice(desk, item)
    before = item.history.count()

    saved = first.post(url, mine | {"text": "Load test: p95 < 200 ms", "change_reason": "QA rerun"})
    refused = second.post(url, theirs | {"text": "Load test skipped"})

    assert saved.status_code == 302
    assert refused.status_code == 200
    (error,) = _errors(refused)
    assert error.startswith("Changed by pm at ")
    assert "(reason: QA rerun) since you opened this page: reload to see their change" in error
    assert error.endswith("nothing was saved.")
    assert "Changed by pm at " in refused.content.decode()
    item.refresh_from_db()
    assert item.text == "Load test: p95 < 200 ms"
    assert item.history.count() == before + 1
    assert item.history.latest().history_user == desk.pm


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_change_form_refuses_a_save_of_a_stale_page_when_another_pm_saved_first(desk, kind):
    obj = desk.rows[kind]
    field, mine_value, their_value = EDITS[kind]
    url, (first, mine), (second, theirs) = _open_twice(desk, obj)
    before = obj.history.count()

    saved = first.post(url, mine | {field: mine_value})
    refused = second.post(url, theirs | {field: their_value})

    assert saved.status_code == 302, saved.context and saved.context["adminform"].form.errors
    assert refused.status_code == 200
    assert [e.split(" at ")[0] for e in _errors(refused)] == ["Changed by pm"]
    obj.refresh_from_db()
    assert getattr(obj, field) == mine_value
    assert obj.history.count() == before + 1


def test_item_form_saves_both_times_when_the_same_user_reloads_between(desk):
    item = desk.rows["item"]
    client, url = client_of(desk.pm), change_url(item)
    before = item.history.count()

    first = client.post(url, page_data(client.get(url)) | {"text": "First wording"})
    second = client.post(url, page_data(client.get(url)) | {"text": "Second wording"})

    assert (first.status_code, second.status_code) == (302, 302)
    item.refresh_from_db()
    assert item.text == "Second wording"
    assert item.history.count() == before + 2


def test_item_form_refuses_a_second_tab_of_the_same_user_when_the_first_tab_saved(desk):
    item = desk.rows["item"]
    client, url = client_of(desk.pm), change_url(item)
    tab_one, tab_two = page_data(client.get(url)), page_data(client.get(url))

    assert client.post(url, tab_one | {"text": "From tab one"}).status_code == 302
    refused = client.post(url, tab_two | {"text": "From tab two"})

    assert refused.status_code == 200
    assert _errors(refused)[0].startswith("Changed by pm at ")
    item.refresh_from_db()
    assert item.text == "From tab one"


def test_item_form_refuses_a_save_when_a_bulk_action_changed_the_item_since_opened(desk):
    item = desk.rows["item"]
    client, url = client_of(desk.pm2), change_url(item)
    opened = page_data(client.get(url))
    items_set_status(items=[item], status=ItemStatus.BLOCKED, user=desk.pm, reason="Vendor down")

    refused = client.post(url, opened | {"status": ItemStatus.COMPLETE})

    assert refused.status_code == 200
    assert "Changed by pm at " in _errors(refused)[0]
    assert "(reason: Vendor down)" in _errors(refused)[0]
    item.refresh_from_db()
    assert item.status == ItemStatus.BLOCKED


def test_release_page_refuses_its_inline_rows_when_the_release_changed_since_opened(desk):
    release, section = desk.rows["release"], desk.rows["section"]
    url, (first, mine), (second, theirs) = _open_twice(desk, release)
    prefix = inline_prefix(second.get(url), Section)
    before = section.history.count()

    assert first.post(url, mine | {"name": "Release 2, renamed"}).status_code == 302
    refused = second.post(url, theirs | {f"{prefix}-0-title": "Readiness, retitled"})

    assert refused.status_code == 200
    assert _errors(refused)[0].startswith("Changed by pm at ")
    section.refresh_from_db()
    assert section.title == "Production readiness"
    assert section.history.count() == before


def test_stale_refusal_escapes_the_reason_when_it_holds_markup(desk):
    item = desk.rows["item"]
    url, (first, mine), (second, theirs) = _open_twice(desk, item)
    first.post(url, mine | {"text": "Changed", "change_reason": f"Because {XSS}"})

    html = second.post(url, theirs | {"text": "Mine"}).content.decode()

    assert "Changed by pm at " in html
    assert XSS not in html
    assert "Because &lt;b&gt;bold&lt;/b&gt;" in html


# ---------------------------------------------------------------- the version cannot be forged
def _forged(item, desk) -> dict[str, object]:
    """Tokens claiming a version newer than the row's: made with another key, altered, issued
    for another row (which has more history), or left out."""
    label, pk = item._meta.label_lower, str(item.pk)
    other = ItemFactory(section=desk.rows["section"], text="Another item")
    for n in range(3):
        other.text = f"Another item, take {n}"
        other.save()
    genuine = version_token(item)
    return {
        "another key": signing.dumps([label, pk, 10**9], key="not-the-secret", salt="x"),
        "altered": genuine[:-1] + ("A" if genuine[-1] != "A" else "B"),
        "another row": version_token(other),
        "left out": None,
    }


@pytest.mark.parametrize("forgery", ["another key", "altered", "another row", "left out"])
def test_item_form_refuses_a_forged_version_and_saves_nothing_when_posted(desk, forgery):
    item = desk.rows["item"]
    client, url = client_of(desk.pm2), change_url(item)
    data = page_data(client.get(url))
    items_set_status(items=[item], status=ItemStatus.BLOCKED, user=desk.pm)  # changed since
    before = item.history.count()
    token = _forged(item, desk)[forgery]
    data.pop(VERSION_FIELD)
    if token is not None:
        data[VERSION_FIELD] = token

    refused = client.post(url, data | {"status": ItemStatus.COMPLETE, "text": "Overwritten"})

    assert refused.status_code == 200
    assert _errors(refused) == [NOT_VERIFIED]
    item.refresh_from_db()
    assert (item.status, item.text) == (ItemStatus.BLOCKED, "Load test executed")
    assert item.history.count() == before


# ---------------------------------------------------------------- what the page carries
def test_change_page_carries_a_signed_version_only_when_the_user_may_save(desk):
    item = desk.rows["item"]
    stakeholder = UserFactory(username="sh", staff=True)
    member_set(release=item.release, user=stakeholder, role=MemberRole.STAKEHOLDER, by=desk.pm)

    editable = client_of(desk.pm).get(change_url(item)).content.decode()
    read_only = client_of(stakeholder).get(change_url(item)).content.decode()

    (token,) = re.findall(rf'<input type="hidden" name="{VERSION_FIELD}" value="([^"]+)"', editable)
    assert token_version(token, item) == row_version(item)
    assert f'name="{VERSION_FIELD}"' not in read_only


def test_item_form_records_no_version_in_the_history_reason_when_saved_unchanged(desk):
    item = desk.rows["item"]
    client, url = client_of(desk.pm), change_url(item)

    client.post(url, page_data(client.get(url)) | {"note": "Seen"})

    assert item.history.latest().history_change_reason == "Changed in the admin: note"


# ---------------------------------------------------------------- PostgreSQL: the row lock
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_item_form_second_concurrent_save_waits_for_the_first_then_is_refused(desk, monkeypatch):
    """Two saves of one version at the same moment: the first holds the row's lock between its
    check and its commit; the second waits for that lock, then sees the first's history entry.
    Without the lock the second's check would pass while the first is still uncommitted, and
    its save would overwrite the first."""
    item = desk.rows["item"]
    url, (first, mine), (second, theirs) = _open_twice(desk, item)
    before = item.history.count()
    checked, go = threading.Event(), threading.Event()
    rule = admin_version.stale_edit_refusals

    def stale_edit_refusals(**kwargs):
        problems = rule(**kwargs)
        if threading.current_thread().name == "first":
            checked.set()
            go.wait(20)  # the first holds its lock here, checked and not yet saved
        return problems

    monkeypatch.setattr(admin_version, "stale_edit_refusals", stale_edit_refusals)
    responses = {}

    def post(name, client, data):
        try:
            responses[name] = client.post(url, data)
        finally:
            connection.close()

    one = threading.Thread(target=post, args=("first", first, mine | {"text": "First"}))
    one.name = "first"
    two = threading.Thread(target=post, args=("second", second, theirs | {"text": "Second"}))
    one.start()
    assert checked.wait(20)
    two.start()
    waited = _lock_waited()  # without the lock, the second save runs through instead
    go.set()
    one.join(30)
    two.join(30)

    assert responses["first"].status_code == 302
    assert responses["second"].status_code == 200
    assert _errors(responses["second"])[0].startswith("Changed by pm at ")
    item.refresh_from_db()
    assert item.text == "First"
    assert item.history.count() == before + 1
    assert waited


def _lock_waited(timeout: float = 5) -> bool:
    """Whether another session of the test database comes to wait for a lock in time."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False
