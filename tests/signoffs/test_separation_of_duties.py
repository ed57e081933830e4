"""Separation of duties: the release's owner and its product managers prepare it, so by default
they hold none of its signing roles (SIGNOFF_ALLOW_AUTHOR_APPROVAL allows it); one person holds
one signing role."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.messages import ERROR, get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse

from checklist.permissions import may_manage
from signoffs.choices import MemberRole, SignatureMeaning
from signoffs.gates import signing_refusals
from signoffs.models import ReleaseMember, Signature
from signoffs.services import (
    member_set,
    release_access_refresh,
    release_set_owner,
    requirement_assign,
    signature_give,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SEPARATION = "who prepares a release does not sign it"
OWNER_REFUSED = (
    "Separation of duties: pm owns this release, and who prepares a release does not sign it. "
    "Choose another signer."
)


def _roles_url(release) -> str:
    return reverse("admin:checklist_release_roles", args=[release.pk])


def _as_owner(client, release, pm) -> None:
    release_access_refresh(release=release, user=pm)  # the fixture's owner manages it
    client.force_login(pm)


def _sign_url(requirement) -> str:
    return reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])


@pytest.fixture
def second_pm(review, pm):
    release, _ = review
    user = UserFactory(username="pm2", staff=True)
    member_set(release=release, user=user, role=MemberRole.PRODUCT_MANAGER, by=pm)
    return user


# ---------------------------------------------------------------- assigning a signing role
def test_requirement_assign_refuses_when_the_assignee_owns_the_release(review, pm):
    _, roles = review
    qa = roles["QA Lead"]
    holder = qa.assignee

    with pytest.raises(ValidationError) as refused:
        requirement_assign(requirement=qa, assignee=pm, by=pm)

    assert refused.value.messages == [OWNER_REFUSED]
    qa.refresh_from_db()
    assert qa.assignee == holder


def test_requirement_assign_refuses_when_the_assignee_is_a_product_manager_of_the_release(
    review, pm, second_pm
):
    _, roles = review

    with pytest.raises(ValidationError) as refused:
        requirement_assign(requirement=roles["CEO"], assignee=second_pm, by=pm)

    assert "pm2 is a product manager of this release" in refused.value.messages[0]
    assert refused.value.messages[0].startswith("Separation of duties:")
    roles["CEO"].refresh_from_db()
    assert roles["CEO"].assignee.username == "ceo"


def test_requirement_assign_accepts_the_owner_when_author_approval_is_allowed(review, pm, settings):
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True
    _, roles = review

    requirement_assign(requirement=roles["QA Lead"], assignee=pm, by=pm)

    roles["QA Lead"].refresh_from_db()
    assert roles["QA Lead"].assignee == pm


def test_requirement_assign_still_refuses_a_second_role_when_author_approval_is_allowed(
    review, pm, settings
):
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True
    _, roles = review

    with pytest.raises(ValidationError) as refused:
        requirement_assign(requirement=roles["CEO"], assignee=roles["QA Lead"].assignee, by=pm)

    assert "one person holds one signing role" in refused.value.messages[0]


# ---------------------------------------------------------------- becoming owner or PM
def test_release_set_owner_refuses_when_the_new_owner_holds_a_signing_role(review, pm):
    release, roles = review
    qa = roles["QA Lead"].assignee

    with pytest.raises(ValidationError) as refused:
        release_set_owner(release=release, owner=qa, by=pm)

    [message] = refused.value.messages
    assert message.startswith(
        "Separation of duties: qa.lead signs as QA Lead on this release, so cannot be its owner"
    )
    release.refresh_from_db()
    assert release.owner == pm and not may_manage(qa, release)


def test_member_set_refuses_a_product_manager_when_the_user_holds_a_signing_role(review, pm):
    release, roles = review
    ceo = roles["CEO"].assignee

    with pytest.raises(ValidationError) as refused:
        member_set(release=release, user=ceo, role=MemberRole.PRODUCT_MANAGER, by=pm)

    [message] = refused.value.messages
    assert "ceo signs as CEO on this release, so cannot be its product manager" in message
    assert not ReleaseMember.objects.filter(release=release, user=ceo).exists()
    assert not may_manage(ceo, release)


def test_member_set_grants_a_signer_stakeholder_access_when_not_a_product_manager(review, pm):
    release, roles = review
    ceo = roles["CEO"].assignee

    member = member_set(release=release, user=ceo, role=MemberRole.STAKEHOLDER, by=pm)

    assert member.role == MemberRole.STAKEHOLDER


def test_release_set_owner_accepts_a_signer_when_author_approval_is_allowed(review, pm, settings):
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True
    release, roles = review

    release_set_owner(release=release, owner=roles["QA Lead"].assignee, by=pm)

    release.refresh_from_db()
    assert release.owner == roles["QA Lead"].assignee


# ---------------------------------------------------------------- signing
@pytest.fixture
def owner_signs(review, pm, settings):
    """The owner holds QA Lead: assigned while author approval was allowed, then turned off."""
    _, roles = review
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True
    requirement_assign(requirement=roles["QA Lead"], assignee=pm, by=pm)
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = False
    roles["QA Lead"].refresh_from_db()
    return roles["QA Lead"]


def test_signing_refusals_refuse_the_owner_when_the_owner_holds_the_role(owner_signs, pm):
    refusals = signing_refusals(
        requirement=owner_signs, user=pm, meaning=SignatureMeaning.APPROVED, comment=""
    )

    assert refusals == [OWNER_REFUSED]


def test_signature_give_refuses_and_signs_nothing_when_the_owner_holds_the_role(
    owner_signs, pm, password
):
    with pytest.raises(ValidationError) as refused:
        signature_give(
            requirement=owner_signs,
            user=pm,
            username="pm",
            password=password,
            meaning=SignatureMeaning.APPROVED,
        )

    assert SEPARATION in refused.value.messages[0]
    assert not Signature.objects.exists()


def test_signature_give_signs_for_the_owner_when_author_approval_is_allowed(
    owner_signs, pm, password, settings
):
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True

    signature = signature_give(
        requirement=owner_signs,
        user=pm,
        username="pm",
        password=password,
        meaning=SignatureMeaning.APPROVED,
    )

    assert signature.signer == pm


def test_signing_refusals_refuse_a_product_manager_who_holds_the_role(review, pm, settings):
    release, roles = review
    qa = roles["QA Lead"].assignee
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = True
    member_set(release=release, user=qa, role=MemberRole.PRODUCT_MANAGER, by=pm)
    settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL = False

    refusals = signing_refusals(
        requirement=roles["QA Lead"], user=qa, meaning=SignatureMeaning.APPROVED, comment=""
    )

    assert any("qa.lead is a product manager of this release" in r for r in refusals)


def test_signing_refusals_refuse_a_manager_granted_by_hand_in_the_user_admin(review):
    from django.contrib.auth.models import Group

    release, roles = review
    qa = roles["QA Lead"].assignee
    Group.objects.get(name=f"release-{release.pk}-managers").user_set.add(qa)

    refusals = signing_refusals(
        requirement=roles["QA Lead"], user=qa, meaning=SignatureMeaning.APPROVED, comment=""
    )

    assert any("qa.lead manages this release" in r for r in refusals)


def test_sign_page_shows_the_refusal_without_a_form_when_the_owner_holds_the_role(
    client, owner_signs, pm
):
    client.force_login(pm)

    response = client.get(_sign_url(owner_signs))

    assert response.status_code == 200
    assert response.context["form"] is None
    assert SEPARATION in response.content.decode()


# ---------------------------------------------------------------- the roles page
def test_roles_page_shows_the_refusal_and_changes_nothing_when_the_owner_is_chosen_as_signer(
    client, review, pm
):
    release, roles = review
    qa = roles["QA Lead"]
    _as_owner(client, release, pm)

    response = client.post(
        _roles_url(release),
        {
            "owner": pm.pk,
            f"signer_{qa.pk}": pm.pk,
            f"signer_{roles['Security Officer'].pk}": roles["Security Officer"].assignee.pk,
            f"signer_{roles['CEO'].pk}": roles["CEO"].assignee.pk,
        },
        follow=True,
    )

    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level == ERROR]
    assert errors == [OWNER_REFUSED]
    assert SEPARATION in response.content.decode()
    qa.refresh_from_db()
    assert qa.assignee.username == "qa.lead"


def test_roles_page_hands_a_role_over_and_makes_its_former_holder_owner_when_saved_at_once(
    client, review, pm
):
    release, roles = review
    qa = roles["QA Lead"]
    former = qa.assignee
    newcomer = UserFactory(username="qa.deputy", staff=True)
    _as_owner(client, release, pm)

    response = client.post(
        _roles_url(release),
        {
            "owner": former.pk,
            f"signer_{qa.pk}": newcomer.pk,
            f"signer_{roles['Security Officer'].pk}": roles["Security Officer"].assignee.pk,
            f"signer_{roles['CEO'].pk}": roles["CEO"].assignee.pk,
        },
    )

    assert response.status_code == 302
    release.refresh_from_db()
    qa.refresh_from_db()
    assert release.owner == former and qa.assignee == newcomer


# ---------------------------------------------------------------- the setting
def _setting_from_environment(tmp_path, **extra) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "DCMMS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SIGNOFF_ALLOW_AUTHOR_APPROVAL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_settings_refuse_author_approval_unless_the_environment_allows_it(tmp_path):
    assert _setting_from_environment(tmp_path) == "False"
    assert _setting_from_environment(tmp_path, SIGNOFF_ALLOW_AUTHOR_APPROVAL="true") == "True"
