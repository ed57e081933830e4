"""A page's own status poll does not save the session (dcmms_release/passive_session.py): it does
not extend the idle timeout, and on SQLite it does not wait for an import's write lock."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from dcmms_release.passive_session import PassiveSessionMiddleware, mark_passive
from tests.factories import ImportJobFactory, UserFactory

pytestmark = pytest.mark.django_db


def _expiry(client):
    return Session.objects.get(pk=client.session.session_key).expire_date


def test_import_status_poll_leaves_the_session_unsaved_when_a_page_view_saves_it(client):
    pm = UserFactory(staff=True)
    pm.user_permissions.add(Permission.objects.get(codename="add_release"))
    job = ImportJobFactory(created_by=pm, running=True)
    client.force_login(pm)
    page = reverse("admin:checklist_release_import_job", args=[job.pk])
    poll = reverse("admin:checklist_release_import_job_status", args=[job.pk])
    client.get(page)
    saved = _expiry(client)

    assert client.get(poll).json()["state"] == "running"
    assert _expiry(client) == saved  # not saved: the idle timeout runs on

    client.get(page)
    assert _expiry(client) > saved  # a person's page view extends it, as before


def test_passive_request_still_saves_a_session_it_changed():
    def view(request):
        mark_passive(request)
        request.session["changed"] = True
        return HttpResponse("ok")

    request = RequestFactory().get("/")
    SessionMiddleware(PassiveSessionMiddleware(view))(request)

    stored = Session.objects.get(pk=request.session.session_key)
    assert stored.get_decoded() == {"changed": True}
