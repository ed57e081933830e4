"""The history page never shows "None": a write by no signed-in user says "System"."""

import pytest
from django.urls import reverse

from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_history_page_names_the_system_not_none_when_a_command_wrote_the_row(client):
    item = ItemFactory(text="p95 latency")  # written with no user, as a command or task does
    admin = UserFactory(username="root", staff=True, is_superuser=True)
    client.force_login(admin)

    body = client.get(reverse("admin:checklist_item_history", args=[item.pk])).content.decode()

    assert "System (no signed-in user)" in body
    assert "<td>\n            None\n" not in body and ">None<" not in body
