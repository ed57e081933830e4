"""The reason for change (checklist.change_reasons, checklist.admin_reason): required on the edit
forms of items, risks, action items and criteria while the release is in review, a readable
default in a draft, a reason on every admin write, and the backstop that fills a derived one."""

from decimal import Decimal

import pytest
from django.urls import reverse

from checklist.change_reasons import (
    REASON_REQUIRED,
    change_reason_refusals,
    default_reason,
)
from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item
from risks.models import ActionItem
from signoffs.choices import MemberRole
from signoffs.services import member_set
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

XSS = "<b>bold</b>"


def _latest(obj):
    return obj.history.order_by("-history_id").first()


def _reasons(obj) -> list[str]:
    return list(obj.history.order_by("history_id").values_list("history_change_reason", flat=True))


def _form_data(client, url: str) -> dict:
    """The change form as the browser would post it back, unchanged."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    return data


def _item_in(status: str, **kwargs) -> Item:
    section = SectionFactory(release=ReleaseFactory(status=status))
    return ItemFactory(section=section, metric=True, text="API p95 latency", **kwargs)


def _change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


# ---------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    ("status", "reason", "refused"),
    [
        (ReleaseStatus.DRAFT, "", False),
        (ReleaseStatus.IN_REVIEW, "", True),
        (ReleaseStatus.IN_REVIEW, "   ", True),
        (ReleaseStatus.IN_REVIEW, "Vendor fixed it", False),
        (ReleaseStatus.DECIDED, "", True),
    ],
)
def test_change_reason_refusals_require_a_reason_when_the_release_is_under_review(
    status, reason, refused
):
    release = ReleaseFactory.build(status=status)

    problems = change_reason_refusals(releases=[release], reason=reason)

    assert problems == ([REASON_REQUIRED] if refused else [])


def test_change_reason_refusals_require_a_reason_when_moving_a_row_into_a_release_in_review():
    draft = ReleaseFactory.build(status=ReleaseStatus.DRAFT)
    review = ReleaseFactory.build(status=ReleaseStatus.IN_REVIEW)

    assert change_reason_refusals(releases=[draft, review], reason="") == [REASON_REQUIRED]


# ---------------------------------------------------------------- the item form
def test_item_form_refuses_an_empty_reason_and_saves_nothing_when_release_in_review(
    admin_client,
):
    item = _item_in(ReleaseStatus.IN_REVIEW)
    url = _change_url(item)
    data = _form_data(admin_client, url) | {"status": ItemStatus.COMPLETE, "actual_value": "150"}
    records = item.history.count()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["change_reason"] == [REASON_REQUIRED]
    assert "required while the release is under review" in response.content.decode()
    item.refresh_from_db()
    assert (item.status, item.actual_value) == (ItemStatus.NOT_STARTED, None)
    assert item.history.count() == records


def test_item_form_records_the_given_reason_in_history_and_on_its_page_when_in_review(
    admin_client, admin_user
):
    item = _item_in(ReleaseStatus.IN_REVIEW)
    url = _change_url(item)
    data = _form_data(admin_client, url) | {
        "actual_value": "150",
        "change_reason": f"Load test rerun on the new index {XSS}",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    record = _latest(item)
    assert record.history_change_reason == f"Load test rerun on the new index {XSS}"
    assert record.history_user == admin_user
    page = admin_client.get(reverse("admin:checklist_item_history", args=[item.pk]))
    html = " ".join(page.content.decode().split())
    assert "Change reason</th>" in html
    assert "Load test rerun on the new index &lt;b&gt;bold&lt;/b&gt;" in html
    assert XSS not in html
    assert "<td> Added </td>" in html  # the factory's row: no reason given, one derived


def test_item_form_records_a_default_naming_the_changed_fields_when_draft_and_no_reason(
    admin_client,
):
    item = _item_in(ReleaseStatus.DRAFT)
    url = _change_url(item)
    data = _form_data(admin_client, url) | {"status": ItemStatus.COMPLETE, "actual_value": "150"}

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _latest(item).history_change_reason == "Changed in the admin: status, actual value"


def test_item_form_shows_the_reason_field_only_when_the_user_may_save(client):
    item = _item_in(ReleaseStatus.IN_REVIEW)
    stakeholder = UserFactory(staff=True)
    member_set(release=item.release, user=stakeholder, role=MemberRole.STAKEHOLDER, by=None)
    client.force_login(stakeholder)

    page = client.get(_change_url(item))

    assert page.status_code == 200
    assert 'name="change_reason"' not in page.content.decode()
    client.force_login(UserFactory(superuser=True))
    assert 'name="change_reason"' in client.get(_change_url(item)).content.decode()


def test_history_version_page_shows_no_reason_field_when_a_past_version_is_viewed(admin_client):
    item = _item_in(ReleaseStatus.IN_REVIEW)
    record = _latest(item)
    url = reverse("admin:checklist_item_simple_history", args=[item.pk, record.history_id])

    page = admin_client.get(url)

    assert page.status_code == 200
    assert 'name="change_reason"' not in page.content.decode()


# ---------------------------------------------------------------- risks, actions, criteria
@pytest.mark.parametrize(
    ("factory", "change"),
    [
        (RiskFactory, {"mitigation": "Second region warm standby"}),
        (ActionItemFactory, {"due_text": "Day 5"}),
        (CriterionFactory, {"text": "All P0 items complete and verified"}),
    ],
)
def test_edit_forms_refuse_an_empty_reason_then_record_the_given_one_when_in_review(
    admin_client, factory, change
):
    obj = factory(release=ReleaseFactory(status=ReleaseStatus.IN_REVIEW))
    url = _change_url(obj)
    data = _form_data(admin_client, url) | change
    records = obj.history.count()

    refused = admin_client.post(url, data)

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["change_reason"] == [REASON_REQUIRED]
    assert obj.history.count() == records

    saved = admin_client.post(url, data | {"change_reason": "Agreed in the daily review"})

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert _latest(obj).history_change_reason == "Agreed in the daily review"


def test_criterion_form_records_the_reason_on_its_link_changes_when_items_are_linked(
    admin_client,
):
    criterion = CriterionFactory(release=ReleaseFactory(status=ReleaseStatus.IN_REVIEW))
    item = ItemFactory(section=SectionFactory(release=criterion.release), text="Load test")
    url = _change_url(criterion)
    data = _form_data(admin_client, url) | {
        "items": [item.pk],
        "change_reason": "Load test decides it",
    }
    first = criterion.history.order_by("-history_id").first().history_id

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    written = criterion.history.filter(history_id__gt=first)
    assert written.exists()
    assert set(written.values_list("history_change_reason", flat=True)) == {"Load test decides it"}
    assert list(criterion.items.all()) == [item]


# ---------------------------------------------------------------- other admin writes
def test_admin_add_records_the_given_reason_or_added_in_the_admin_when_empty(admin_client):
    release = ReleaseFactory(status=ReleaseStatus.DRAFT)
    url = reverse("admin:risks_actionitem_add")
    data = {"release": release.pk, "key": "A-100", "order": 0, "action": "Rotate keys"}
    data["status"] = ItemStatus.NOT_STARTED

    admin_client.post(url, data)
    admin_client.post(url, data | {"key": "A-101", "change_reason": "From the retro"})

    assert _reasons(ActionItem.objects.get(key="A-100")) == ["Added in the admin"]
    assert _reasons(ActionItem.objects.get(key="A-101")) == ["From the retro"]


def test_admin_delete_records_deleted_in_the_admin_and_names_the_section_on_its_items(
    admin_client,
):
    section = SectionFactory(title="Performance")
    item = ItemFactory(section=section, text="p95")
    url = reverse("admin:checklist_section_delete", args=[section.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert section.history.order_by("-history_id").first().history_change_reason == (
        "Deleted in the admin"
    )
    gone = Item.history.filter(id=item.pk, history_type="-").get()
    assert gone.history_change_reason == (
        f"Deleted in the admin with the section “{section.number} Performance”"
    )


def test_admin_bulk_delete_records_a_reason_on_every_row_when_selected_rows_are_deleted(
    admin_client,
):
    actions = [ActionItemFactory(), ActionItemFactory()]

    admin_client.post(
        reverse("admin:risks_actionitem_changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk for a in actions], "post": "yes"},
    )

    assert not ActionItem.objects.exists()
    deleted = ActionItem.history.filter(history_type="-")
    assert (
        list(deleted.values_list("history_change_reason", flat=True))
        == ["Deleted in the admin (selected action items)"] * 2
    )


def test_inline_rows_record_the_page_reason_or_a_default_when_saved_on_the_requirement_page(
    admin_client,
):
    kept = AttestationFactory(text="All tests passing")
    dropped = AttestationFactory(requirement=kept.requirement, text="Old statement")
    requirement = kept.requirement
    url = _change_url(requirement)
    data = _form_data(admin_client, url)
    formset = admin_client.get(url).context["inline_admin_formsets"][0].formset
    prefix = formset.prefix
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": 3,
            f"{prefix}-INITIAL_FORMS": 2,
            f"{prefix}-0-id": kept.pk,
            f"{prefix}-0-requirement": requirement.pk,
            f"{prefix}-0-order": kept.order,
            f"{prefix}-0-text": "All tests passing on CI",
            f"{prefix}-1-id": dropped.pk,
            f"{prefix}-1-requirement": requirement.pk,
            f"{prefix}-1-order": dropped.order,
            f"{prefix}-1-text": dropped.text,
            f"{prefix}-1-DELETE": "on",
            f"{prefix}-2-requirement": requirement.pk,
            f"{prefix}-2-order": 9,
            f"{prefix}-2-text": "Runbook reviewed",
        }
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _reasons(kept)[-1] == "Changed in the admin: text"
    assert dropped.history.filter(history_type="-").get().history_change_reason == (
        "Deleted in the admin"
    )
    added = requirement.attestations.get(text="Runbook reviewed")
    assert _reasons(added) == ["Added in the admin"]


# ---------------------------------------------------------------- the backstop
def test_backstop_derives_added_changed_and_deleted_when_a_write_names_no_reason():
    item = ItemFactory(text="Before")
    item.text = "After"
    item.status = ItemStatus.BLOCKED
    item.save()
    item.save()
    pk = item.pk
    item.delete()

    reasons = list(
        Item.history.filter(id=pk).order_by("history_id").values_list("history_change_reason")
    )
    assert [reason for (reason,) in reasons] == [
        "Added",
        "Changed: text, status",
        "Saved without changes",
        "Deleted",
    ]


def test_backstop_compares_stored_values_when_a_number_is_assigned_as_text():
    item = ItemFactory(actual_value=Decimal("450"))  # no target: nothing to compare with
    item.actual_value = "450.0"
    item.save()

    assert _latest(item).history_change_reason == "Saved without changes"


def test_backstop_names_the_links_when_a_criterion_link_changes_without_a_reason():
    criterion = CriterionFactory()
    item = ItemFactory(section=SectionFactory(release=criterion.release))

    criterion.items.add(item)

    assert _latest(criterion).history_change_reason == "Changed: items"


def test_backstop_keeps_a_given_reason_and_uses_the_block_default_when_none_is_given():
    item = ItemFactory()
    item._change_reason = "Given by the caller"
    item.save()
    assert _latest(item).history_change_reason == "Given by the caller"

    other = ItemFactory()
    with default_reason("Cleaned up by the release manager"):
        other.note = "n/a"
        other.save()
    assert _latest(other).history_change_reason == "Cleaned up by the release manager"
