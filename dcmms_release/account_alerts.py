"""The alarm when an account is under attack (issue #14, point 14; ``account_throttle``).

When failed sign-ins for one account reach ``ACCOUNT_THROTTLE_FAILURES`` and its delay starts,
``attack_alert`` writes one ``account_attack`` audit event (the account, the failures so far,
the addresses they came from, when the first came, the delay now applied) and queues one mail
to ``SECURITY_ALERT_EMAIL`` after the event commits. The throttle rings it once per attack:
again only after a whole window without a failure, or after a successful sign-in.

Nothing for a name that is no account: the throttle counts such names alike (its answers must
not tell which accounts exist), but there is no account to warn about, and an attacker trying
many made-up names must not flood the security mailbox.

The mail is sent by a worker (``checklist.send_security_alert``), never in the request: SMTP
may hang for ``EMAIL_TIMEOUT``. A broker that refuses the task is logged as an error; the audit
event stays the record. A redelivered task sends the same mail again with the same Message-ID.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpRequest
from kombu.exceptions import OperationalError

from .broker import publish

logger = logging.getLogger("dcmms_release.security")

MAIL_ERRORS: tuple[type[Exception], ...] = (smtplib.SMTPException, ConnectionError, TimeoutError)
EVENTS_PATH = "/admin/checklist/auditevent/?kind__exact=account_attack"


def _utc(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds")


def attack_alert(
    *, username: str, request: HttpRequest | None, failures: int, state: dict[str, Any]
) -> Any:
    """Record that ``username``'s account is under attack and queue the mail. Returns the audit
    event, or None when the name is no account."""
    from checklist.audit import audit_record
    from checklist.models_audit import AuditKind

    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        return None
    delay = max(0, round(state.get("next_at", state["last_at"]) - state["last_at"]))
    detail = {
        "failures": failures,
        "addresses": list(state.get("addresses", [])),
        "first_failure_at": _utc(state["first_at"]),
        "delay_seconds": delay,
        "window_seconds": settings.ACCOUNT_THROTTLE_WINDOW,
    }
    event = audit_record(
        AuditKind.ACCOUNT_ATTACK,
        request=request,
        username=user.get_username(),
        obj=user,
        detail=detail,
    )
    logger.warning(
        "Account %s under attack: %d failed sign-ins from %d addresses; audit event %s",
        user.get_username(),
        failures,
        len(detail["addresses"]),
        event.pk,
    )
    transaction.on_commit(partial(_queue_mail, event.pk))
    return event


def _queue_mail(event_id: int) -> None:
    if not settings.SECURITY_ALERT_EMAIL:
        logger.error(
            "Security alert (audit event %s) not mailed: SECURITY_ALERT_EMAIL unset", event_id
        )
        return
    from checklist.tasks import send_security_alert

    try:
        publish(send_security_alert, event_id)  # bounded in time (dcmms_release.broker)
    except OperationalError as error:
        logger.error(
            "Security alert (audit event %s) not mailed: broker unavailable (%s)", event_id, error
        )


def attack_mail(event) -> EmailMessage:
    """The mail for one ``account_attack`` event (plain text; the account name is a real
    account's, the addresses validated ones)."""
    detail = event.detail
    addresses = ", ".join(detail.get("addresses", [])) or "unknown"
    username = " ".join(event.username.split())  # no line breaks in a header
    body = (
        f"The account {username} of the dCMMS release portal is under attack.\n\n"
        f"Failed sign-ins: {detail.get('failures')} since {detail.get('first_failure_at')} "
        f"(UTC), without a pause of {detail.get('window_seconds')} s.\n"
        f"From addresses: {addresses}\n"
        f"Each further attempt for this account now waits (last: {detail.get('delay_seconds')} "
        f"s, growing to at most {settings.ACCOUNT_THROTTLE_MAX_DELAY} s). The account is not "
        "locked: its owner can still sign in from a browser used before, and a successful "
        "sign-in ends the delay.\n\n"
        "What to do: confirm with the owner; block the addresses at the proxy if the attack "
        "goes on; ask the owner to change the password if it may be known.\n"
        f"Audit events: {settings.PORTAL_BASE_URL}{EVENTS_PATH}\n"
    )
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return EmailMessage(
        subject=f"[dCMMS] Account under attack: {username}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(settings.SECURITY_ALERT_EMAIL),
        headers={"Message-ID": f"<account-attack-{event.pk}@{domain}>"},
    )


def attack_alert_send(event_id: int) -> bool:
    """Mail the alert of the audit event ``event_id``; False when it is gone (purged) or no
    address is set. Mail errors propagate (the task retries on ``MAIL_ERRORS``)."""
    from checklist.models_audit import AuditEvent, AuditKind

    event = AuditEvent.objects.filter(pk=event_id, kind=AuditKind.ACCOUNT_ATTACK).first()
    if event is None or not settings.SECURITY_ALERT_EMAIL:
        return False
    attack_mail(event).send()
    return True
