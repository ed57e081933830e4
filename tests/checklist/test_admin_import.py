"""The admin's checklist upload page (checklist.admin_import)."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from checklist.models import Item, Release
from checklist.permissions import may_manage
from signoffs.services import release_access_refresh
from tests.factories import ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db

SECOND = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
SECOND_VERSION = "v2.0.0-rc.1"
URL = "/admin/checklist/release/import/"


def _pm(username="pm.import"):
    user = UserFactory(username=username, staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_release"]))
    return user


def _upload(data: bytes, name: str = "billing.md") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/markdown")


def _post(client, data: bytes, name: str = "billing.md", replace: bool = False):
    payload = {"checklist": _upload(data, name)}
    if replace:
        payload["replace"] = "on"
    return client.post(URL, payload)


def _errors(response) -> list[str]:
    return response.context["form"].non_field_errors()


def test_import_url_is_named_and_precedes_object_urls():
    assert reverse("admin:checklist_release_import") == URL


def test_import_page_sends_anonymous_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response.url


def test_import_page_refuses_staff_without_add_permission(client):
    client.force_login(UserFactory(staff=True))
    assert client.get(URL).status_code == 403
    assert _post(client, SECOND.read_bytes()).status_code == 403
    assert not Release.objects.exists()


def test_import_page_shows_the_form_when_user_may_add(client, django_assert_max_num_queries):
    client.force_login(_pm())
    with django_assert_max_num_queries(12):
        response = client.get(URL)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'enctype="multipart/form-data"' in content
    assert 'name="checklist"' in content and 'name="replace"' in content


def test_import_creates_release_owned_by_importer_when_file_is_valid(client):
    pm = _pm()
    client.force_login(pm)
    response = _post(client, SECOND.read_bytes())
    release = Release.objects.get(version=SECOND_VERSION)
    assert response.status_code == 302
    assert response.url == reverse("admin:checklist_release_change", args=[release.pk])
    assert release.owner == pm and release.source_name == "billing.md"
    assert may_manage(pm, release)
    item = Item.objects.filter(release=release).first()
    assert item.history.first().history_user == pm
    assert item.history.first().history_change_reason == "Imported from billing.md"
    page = client.get(response.url)
    assert page.status_code == 200
    assert f"Imported {release} from billing.md" in page.content.decode()


def test_import_by_superuser_makes_them_owner(client):
    admin = UserFactory(superuser=True)
    client.force_login(admin)
    assert _post(client, SECOND.read_bytes()).status_code == 302
    assert Release.objects.get(version=SECOND_VERSION).owner == admin


def test_import_shows_file_and_line_and_writes_nothing_when_file_has_nul(client):
    client.force_login(_pm())
    response = _post(client, b"# Title\n\nline two\x00\n", name="broken.md")
    assert response.status_code == 200
    errors = _errors(response)
    assert errors and errors[0].startswith("broken.md:3: contains NUL bytes")
    assert "broken.md:3: contains NUL bytes" in response.content.decode()
    assert not Release.objects.exists()


def test_import_refuses_non_utf8_with_its_line(client):
    client.force_login(_pm())
    data = SECOND.read_bytes().replace(b"Billing Service Launch", b"Billing \xff Launch", 1)
    response = _post(client, data, name="latin.md")
    assert _errors(response)[0].startswith("latin.md:1: is not UTF-8 text")
    assert not Release.objects.exists()


def test_import_refuses_file_over_the_limit_before_reading(client, settings):
    settings.CHECKLIST_IMPORT_MAX_BYTES = 100
    client.force_login(_pm())
    response = _post(client, SECOND.read_bytes())
    assert "the limit is 100 bytes" in _errors(response)[0]
    assert not Release.objects.exists()


def test_import_reports_grammar_error_line_and_writes_nothing(client):
    client.force_login(_pm())
    lines = SECOND.read_text(encoding="utf-8").splitlines()
    lines.insert(40, "- [ ] **Bad key**: nothing")  # placed between blocks: not an item
    lines.insert(5, "          - [ ] an item nested under nothing")
    response = _post(client, "\n".join(lines).encode(), name="odd.md")
    errors = _errors(response)
    assert errors and errors[0].startswith("odd.md:")
    assert not Release.objects.exists()
    assert not Item.objects.exists()


def test_import_refuses_existing_version_without_replace(client):
    pm = _pm()
    client.force_login(pm)
    _post(client, SECOND.read_bytes())
    items = Item.objects.count()
    response = _post(client, SECOND.read_bytes())
    errors = _errors(response)
    assert f"release {SECOND_VERSION} already exists" in errors[0]
    assert "tick “Replace the existing version”" in errors[1]
    assert Release.objects.count() == 1 and Item.objects.count() == items


def test_import_replaces_when_user_manages_the_release(client):
    pm = _pm()
    client.force_login(pm)
    _post(client, SECOND.read_bytes())
    release = Release.objects.get(version=SECOND_VERSION)
    edited = SECOND.read_bytes().replace(b"Sprint 7 - Hardening", b"Sprint 8 - Launch", 1)
    response = _post(client, edited, name="billing-2.md", replace=True)
    assert response.status_code == 302
    release.refresh_from_db()
    assert release.sprint == "Sprint 8 - Launch" and release.source_name == "billing-2.md"
    assert Release.objects.count() == 1 and release.owner == pm


def test_import_refuses_replace_when_user_does_not_manage_the_release(client):
    owner = _pm("owner")
    release = ReleaseFactory(version=SECOND_VERSION, owner=owner, sprint="kept")
    release_access_refresh(release=release, user=owner)
    client.force_login(_pm("other.pm"))
    response = _post(client, SECOND.read_bytes(), replace=True)
    assert response.status_code == 200
    assert "you do not manage it" in _errors(response)[0]
    release.refresh_from_db()
    assert release.sprint == "kept" and not release.items.exists()


def test_release_changelist_links_to_import_when_user_may_add(client):
    pm = _pm()
    release = ReleaseFactory(owner=pm)
    release_access_refresh(release=release, user=pm)
    client.force_login(pm)
    content = client.get(reverse("admin:checklist_release_changelist")).content.decode()
    assert f'href="{URL}"' in content and "Import a checklist" in content


def test_release_changelist_hides_import_when_user_may_not_add(client):
    viewer = UserFactory(staff=True)
    release = ReleaseFactory(owner=viewer)
    release_access_refresh(release=release, user=viewer)
    client.force_login(viewer)
    response = client.get(reverse("admin:checklist_release_changelist"))
    assert response.status_code == 200
    assert "Import a checklist" not in response.content.decode()


def test_pm_without_a_release_reaches_the_import_page_from_the_menu_when_allowed_to_add(client):
    other = ReleaseFactory(version="v9.9.9")
    client.force_login(_pm("pm.new"))

    index = client.get("/admin/")
    listing = client.get("/admin/checklist/release/")

    assert index.status_code == 200
    assert 'href="/admin/checklist/release/"' in index.content.decode()
    assert listing.status_code == 200
    assert f'href="{URL}"' in listing.content.decode()
    assert other.version not in listing.content.decode()  # the list is empty, not everyone's
    assert client.get(f"/admin/checklist/release/{other.pk}/change/").status_code == 404


def test_staff_without_a_release_or_add_permission_has_no_release_menu(client):
    client.force_login(UserFactory(username="nobody.staff", staff=True))

    index = client.get("/admin/")

    assert 'href="/admin/checklist/release/"' not in index.content.decode()
    assert client.get("/admin/checklist/release/").status_code == 403
