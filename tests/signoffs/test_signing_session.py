"""§11.200(a)(1): the first signing of a session asks for the user ID and the password; later
signings in the same session, the password only; a sign-in starts anew."""

import pytest
from axes.models import AccessAttempt
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse

from checklist.models_audit import AuditEvent
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import Signature
from signoffs.services import signature_give, signature_revoke
from signoffs.signing_session import SESSION_KEY
from tests.signoffs.sign_page import sign_post

pytestmark = pytest.mark.django_db

USER_ID_FIELD = 'name="username"'
NO_USER_ID = "Type your user ID to sign."
WRONG_USER_ID = "The user ID is not the one you signed in with; nothing was signed."


def _sign_url(requirement) -> str:
    return reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])


def _post(client, requirement, password, **extra):
    return sign_post(client, requirement, {"meaning": "approved", "password": password, **extra})


def _errors(response) -> list[str]:
    form = response.context["form"]
    return [*form.non_field_errors(), *form.errors.get("username", [])]


def _sign_then_revoke(client, requirement, password) -> None:
    """A full first signing, then withdrawn: the role can be signed again in this session."""
    response = _post(client, requirement, password, username=requirement.assignee.username)
    assert response.status_code == 302
    signature_revoke(
        signature=Signature.objects.get(requirement=requirement, state=SignatureState.VALID),
        by=requirement.assignee,
        reason="signed the wrong build",
    )


# ---------------------------------------------------------------- the first signing
def test_sign_page_shows_user_id_and_password_when_first_signing_of_the_session(client, review):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)

    html = client.get(_sign_url(roles["QA Lead"])).content.decode()

    assert USER_ID_FIELD in html and "User ID" in html
    assert 'autocomplete="username"' in html and 'name="password"' in html


def test_sign_page_refuses_and_signs_nothing_when_first_signing_has_no_user_id(
    client, review, password
):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)

    response = _post(client, roles["QA Lead"], password)

    assert response.status_code == 200
    assert NO_USER_ID in _errors(response)
    assert NO_USER_ID in response.content.decode()
    assert not Signature.objects.exists()
    assert SESSION_KEY not in client.session


def test_signature_give_refuses_when_first_signing_of_the_session_has_no_user_id(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    request = RequestFactory().post("/")
    request.session = client.session  # a session in which nobody has signed yet

    with pytest.raises(ValidationError) as refused:
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            password=password,
            meaning=SignatureMeaning.APPROVED,
            request=request,
        )

    assert "first signing of a session asks for both" in refused.value.messages[0]
    assert not Signature.objects.exists()


def test_signature_give_needs_the_user_id_when_there_is_no_session(review, password):
    _, roles = review
    requirement = roles["QA Lead"]
    kwargs = {
        "requirement": requirement,
        "user": requirement.assignee,
        "password": password,
        "meaning": SignatureMeaning.APPROVED,
    }

    with pytest.raises(ValidationError):
        signature_give(**kwargs)  # a command: never a later signing of a session
    assert not Signature.objects.exists()
    assert signature_give(**kwargs, username="qa.lead").state == SignatureState.VALID


def test_sign_page_signs_and_marks_the_session_when_user_id_and_password_are_typed(
    client, review, password
):
    release, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    response = _post(client, requirement, password, username=" qa.lead ")

    assert response.status_code == 302
    signature = Signature.objects.get()
    assert signature.signer == requirement.assignee and signature.release == release
    assert client.session[SESSION_KEY] == requirement.assignee.pk


# ---------------------------------------------------------------- later signings
def test_sign_page_asks_the_password_only_when_a_later_signing_follows_in_the_same_session(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)
    _sign_then_revoke(client, requirement, password)

    html = client.get(_sign_url(requirement)).content.decode()
    response = _post(client, requirement, password)

    assert USER_ID_FIELD not in html and 'name="password"' in html
    assert "first signing in this session" in html
    assert response.status_code == 302
    assert Signature.objects.filter(requirement=requirement, state=SignatureState.VALID).exists()


def test_sign_page_refuses_a_wrong_password_when_a_later_signing_asks_for_it_only(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)
    _sign_then_revoke(client, requirement, password)

    response = _post(client, requirement, "not my password")

    assert _errors(response) == ["The password is not correct; nothing was signed."]
    assert not Signature.objects.filter(state=SignatureState.VALID).exists()


def test_sign_page_asks_the_user_id_again_when_the_signer_logs_out_and_in(client, review, password):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)
    _sign_then_revoke(client, requirement, password)

    client.logout()
    client.force_login(requirement.assignee)

    assert USER_ID_FIELD in client.get(_sign_url(requirement)).content.decode()
    response = _post(client, requirement, password)
    assert NO_USER_ID in _errors(response)
    assert not Signature.objects.filter(state=SignatureState.VALID).exists()


def test_sign_page_asks_the_user_id_again_when_the_signer_signs_in_again_without_logging_out(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)
    _sign_then_revoke(client, requirement, password)

    client.force_login(requirement.assignee)  # same person: Django keeps the session's data

    assert SESSION_KEY not in client.session
    assert USER_ID_FIELD in client.get(_sign_url(requirement)).content.decode()


def test_sign_page_asks_the_user_id_when_another_person_signed_earlier_in_the_session(
    client, review, password
):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)
    _sign_then_revoke(client, roles["QA Lead"], password)
    session = client.session
    session[SESSION_KEY] = roles["QA Lead"].assignee.pk
    session.save()
    client.force_login(roles["Security Officer"].assignee)  # another person: a new session

    assert USER_ID_FIELD in client.get(_sign_url(roles["Security Officer"])).content.decode()


# ---------------------------------------------------------------- a wrong user ID
def test_sign_page_refuses_and_counts_a_failed_sign_in_when_the_user_id_is_not_the_signers(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    response = _post(client, requirement, password, username="ceo")  # a real, other account

    assert response.status_code == 200
    assert _errors(response) == [WRONG_USER_ID]
    assert not Signature.objects.exists()
    failed = AuditEvent.objects.filter(kind="login_failed")
    assert list(failed.values_list("username", flat=True)) == ["qa.lead"]
    assert AccessAttempt.objects.get().username == "qa.lead"  # never the other account


def test_sign_page_locks_the_signer_out_when_a_wrong_user_id_is_typed_five_times(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    for _ in range(5):
        _post(client, requirement, password, username="qa.lead2")
    response = _post(client, requirement, password, username="qa.lead")

    assert response.status_code == 429
    assert AuditEvent.objects.filter(kind="lockout", username="qa.lead").exists()
    assert not Signature.objects.exists()
