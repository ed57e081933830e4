"""Issue #14 point 11: a request carrying a value the portal cannot use answers 400, never 500.
A NUL character anywhere in the query string or a form (PostgreSQL refuses NUL in text: a
filter or an autocomplete search carrying one was a 500 there), and a value that is not one of
the field it is compared with (a foreign key that is not an integer: a list filter, an add
form's autocomplete value, an action's selected rows). dcmms_release.input_guard,
checklist.admin_base.AuditedAdmin.get_changelist_instance, checklist.admin_filters."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse

from checklist.choices import ItemStatus
from checklist.models import Item
from dcmms_release.input_guard import BadInputMiddleware, is_bad_value
from tests.factories import (
    AttestationFactory,
    ItemFactory,
    RiskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ITEMS = "/admin/checklist/item/"
AUTOCOMPLETE = "/admin/autocomplete/?app_label=checklist&model_name=item&field_name=parent"

# Where a NUL reaches a query: a list filter, a list search, an autocomplete search, a name.
NUL_GETS = (
    f"{ITEMS}?status__exact=x%00",
    f"{ITEMS}?q=a%00",
    f"{AUTOCOMPLETE}&term=a%00",
    f"{ITEMS}?status%00=x",
    "/admin/risks/risk/?q=%00",
)
# A foreign key, or a section, that is not an id: letters, a superscript digit (a digit to
# str.isdigit, not to int), an integer past SQLite's range. (A release id past the range is
# Django's to answer: an empty list.)
BAD_FILTERS = (
    f"{ITEMS}?release__id__exact=abc",
    f"{ITEMS}?release__id__exact=%C2%B2",
    f"{ITEMS}?section_tree=abc",
    f"{ITEMS}?section_tree=%C2%B2",
    f"{ITEMS}?section_tree=99999999999999999999",
    f"{ITEMS}?owner__id__exact=abc",
    "/admin/risks/risk/?release__id__exact=abc",
    "/admin/signoffs/attestation/?requirement__release__id__exact=abc",
)
# An add form whose autocomplete widget looks up the value it was given.
BAD_AUTOCOMPLETE_VALUES = (
    "/admin/checklist/item/add/?release=abc",
    "/admin/checklist/item/add/?section=%C2%B2",
    "/admin/risks/risk/add/?release=abc",
)


@pytest.fixture
def superuser_client(client):
    ItemFactory(text="Login works", owner=UserFactory())  # an owner: the owner filter shows
    RiskFactory()
    AttestationFactory()
    client.force_login(UserFactory(superuser=True))
    client.raise_request_exception = False  # a 500 is answered, as to a browser
    return client


def _bad_request(response) -> None:
    assert response.status_code == 400, response.status_code
    assert b"Bad request" in response.content


@pytest.mark.parametrize("url", NUL_GETS)
def test_request_answers_400_when_the_query_string_carries_a_nul(superuser_client, url):
    _bad_request(superuser_client.get(url))


def test_post_answers_400_and_changes_nothing_when_a_form_value_carries_a_nul(superuser_client):
    item = Item.objects.get(text="Login works")
    history = item.history.count()
    url = reverse("admin:checklist_item_change", args=[item.pk])
    response = superuser_client.post(url, {"text": "Login\x00works", "note": "x"})
    _bad_request(response)
    item.refresh_from_db()
    assert item.text == "Login works"
    assert item.history.count() == history


@pytest.mark.postgres
@pytest.mark.parametrize("url", NUL_GETS)
def test_nul_answers_400_on_postgresql_when_a_filter_or_search_would_carry_it(
    superuser_client, url
):
    """PostgreSQL itself refuses NUL in text ("PostgreSQL text fields cannot contain NUL"):
    without the guard these were 500s."""
    _bad_request(superuser_client.get(url))
    assert superuser_client.get(ITEMS).status_code == 200  # the connection is still usable


@pytest.mark.parametrize("url", BAD_FILTERS)
def test_changelist_answers_400_when_a_filter_value_is_not_an_id(superuser_client, url):
    _bad_request(superuser_client.get(url))


@pytest.mark.parametrize("url", BAD_AUTOCOMPLETE_VALUES)
def test_add_form_answers_400_when_an_autocomplete_field_is_given_a_non_integer_id(
    superuser_client, url
):
    _bad_request(superuser_client.get(url))


@pytest.mark.parametrize("selected", ["abc", "²"])
def test_admin_action_answers_400_and_changes_nothing_when_a_selected_id_is_not_an_integer(
    superuser_client, selected
):
    item = Item.objects.get(text="Login works")
    response = superuser_client.post(
        ITEMS,
        {"action": "mark_complete", "_selected_action": [str(item.pk), selected], "index": 0},
    )
    _bad_request(response)
    item.refresh_from_db()
    assert item.status != ItemStatus.COMPLETE


def test_changelist_filters_as_before_when_the_release_id_is_valid(superuser_client):
    item = Item.objects.get(text="Login works")
    other = ItemFactory(text="Other release item")
    response = superuser_client.get(f"{ITEMS}?release__id__exact={item.release_id}")
    assert response.status_code == 200
    assert b"Login works" in response.content
    assert other.text.encode() not in response.content
    response = superuser_client.get(f"{ITEMS}?section_tree={item.section_id}")
    assert response.status_code == 200
    assert b"Login works" in response.content


def test_changelist_shows_no_row_when_the_release_id_is_past_the_integer_range(superuser_client):
    """Twenty digits overflowed SQLite in the item list's own release lookup (a 500)."""
    response = superuser_client.get(f"{ITEMS}?release__id__exact=99999999999999999999")
    assert response.status_code == 200
    assert b"Login works" not in response.content


def test_autocomplete_answers_as_before_when_the_term_is_plain_text(superuser_client):
    response = superuser_client.get(f"{AUTOCOMPLETE}&term=Login")
    assert response.status_code == 200
    assert "Login works" in str(response.json())


def test_bad_input_guard_leaves_a_500_when_a_view_fails_on_its_own():
    """Only Django's refusal of a value the request sent is a 400: any other error stays a
    500 (with its incident id), so the guard hides no defect."""
    middleware = BadInputMiddleware(lambda request: None)
    request = RequestFactory().get("/admin/")
    assert middleware.process_exception(request, ValueError("division by zero")) is None
    assert middleware.process_exception(request, KeyError("release")) is None
    try:
        Item.objects.filter(pk="abc")
    except ValueError as error:
        refused = error
    assert is_bad_value(refused)
    assert middleware.process_exception(request, refused).status_code == 400
