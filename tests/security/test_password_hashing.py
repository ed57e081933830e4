"""Password hashing: Argon2id at OWASP's minimum parameters, and older hashes upgraded at the
next sign-in (docs/security.md §1, issue #8)."""

import pytest
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    PBKDF2PasswordHasher,
    identify_hasher,
    make_password,
)

from dcmms_release import settings as project_settings
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/?next=/admin/"
OWASP_PARAMETERS = "m=19456,t=2,p=1"


@pytest.fixture
def production_hashers(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS


def _user_with(encoded: str):
    user = UserFactory(username="dana", staff=True)
    user.password = encoded
    user.save(update_fields=["password"])
    return user


def _parameters(encoded: str) -> str:
    # argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash
    return encoded.split("$")[3]


def test_password_hashing_uses_owasp_argon2id_parameters_when_production_hashers(
    production_hashers,
):
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$v=19$")
    assert _parameters(encoded) == OWASP_PARAMETERS
    assert identify_hasher(encoded).verify(PASSWORD, encoded)
    assert not identify_hasher(encoded).verify("wrong password here", encoded)


@pytest.mark.parametrize(
    "old_hasher",
    [Argon2PasswordHasher, PBKDF2PasswordHasher],
    ids=["argon2-django-defaults", "pbkdf2"],
)
def test_sign_in_upgrades_an_older_hash_when_the_password_is_right(
    client, production_hashers, old_hasher
):
    old = old_hasher().encode(PASSWORD, old_hasher().salt())
    user = _user_with(old)
    assert old != make_password(PASSWORD)  # different parameters or algorithm

    response = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert response.status_code == 302 and response.url == "/admin/"
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert _parameters(user.password) == OWASP_PARAMETERS
    assert user.check_password(PASSWORD)


def test_sign_in_keeps_the_old_hash_when_the_password_is_wrong(client, production_hashers):
    old = Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt())
    user = _user_with(old)
    assert _parameters(old) == "m=102400,t=2,p=8"  # Django's defaults

    response = client.post(LOGIN, {"username": "dana", "password": "not the password at all"})

    assert response.status_code == 200  # the form again, with its error
    user.refresh_from_db()
    assert user.password == old
