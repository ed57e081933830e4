"""Recording security events, and the receivers that record them.

``audit_record(kind, ...)`` is the one way to write an ``AuditEvent``: everyone calls it (record
downloads, role changes, refusals). The receivers record sign-in, sign-out, failed sign-in (the
username as typed — never the password), django-axes lockouts and their lifting, and end a
user's other sessions when the password changes or the account is deactivated (ASVS 3.3.3).
``connect()`` is called once from ``ChecklistConfig.ready()``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest
from django.utils import timezone

from dcmms_release.db import after_transaction

from .models_audit import AuditEvent, AuditKind

USERNAME_MAX = 150
REPR_MAX = 300


def _request_user(request: HttpRequest | None):
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def audit_record(
    kind: str,
    *,
    request: HttpRequest | None = None,
    actor=None,
    username: str | None = None,
    release=None,
    obj: Any = None,
    detail: dict | None = None,
) -> AuditEvent:
    """Append one audit event. The actor defaults to the request's signed-in user, the client
    address to the request's; ``detail`` must be JSON-serialisable and never holds a secret."""
    AuditKind(kind)  # an unknown kind is a programming error, not a silent new category
    from dcmms_release.security import client_ip

    actor = actor if actor is not None else _request_user(request)
    if username is None:
        username = actor.get_username() if actor is not None else ""
    if release is None and obj is not None and getattr(obj, "release_id", None):
        release_id = obj.release_id
    else:
        release_id = getattr(release, "pk", None)
    with transaction.atomic(savepoint=False):  # the event and its chain link commit together
        return AuditEvent.objects.create(
            at=timezone.now(),
            actor=actor,
            username=str(username)[:USERNAME_MAX],
            kind=kind,
            release_id=release_id,
            object_repr=str(obj)[:REPR_MAX] if obj is not None else "",
            ip=client_ip(request),
            detail=detail or {},
        )


# ---------------------------------------------------------------- refused requests
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DENIED_EVENT = "_dcmms_denied_event"
_DENIED_PENDING = "_dcmms_denied_pending"
_DENIED_WATCHED = "_dcmms_denied_watched"


def current_request() -> HttpRequest | None:
    """The request being served on this thread (simple-history's middleware keeps it), if any."""
    from simple_history.models import HistoricalRecords

    return getattr(HistoricalRecords.context, "request", None)


def audit_denied(
    request_or_user=None,
    *,
    reason: str = "",
    obj: Any = None,
    release=None,
    detail: dict | None = None,
) -> AuditEvent | None:
    """Record a refusal for lack of right as one ``permission_denied`` event: who, the path and
    method of the request, and why. Call it with the request, or with the refused user from a
    service (the request being served is then found, when there is one).

    One event per refused request: later calls for the same request (the 403 handler after a
    view or service already recorded why) only add what is not known yet. The event is kept on
    the request and written by ``DeniedAuditMiddleware`` once the response is ready, with the
    status answered, outside the refused write's transaction (its rollback does not take the
    record along). Without that middleware, or without a request (a command, a task), it is
    written once the caller's transaction has ended — after its rollback too (at once outside a
    transaction). Never pass the request body or a password in ``detail``."""
    if isinstance(request_or_user, HttpRequest):
        request, actor = request_or_user, _request_user(request_or_user)
    else:
        request, actor = current_request(), request_or_user
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
        if request is not None and actor is not None and _request_user(request) != actor:
            request = None  # a refusal about someone else than the signed-in user
    facts = {"reason": str(reason)[:500]} if reason else {}
    facts.update(detail or {})
    if request is None:  # written once the caller's transaction has ended, even rolled back
        after_transaction(
            lambda: audit_record(
                AuditKind.PERMISSION_DENIED, actor=actor, obj=obj, release=release, detail=facts
            ),
            transaction.get_connection(),
        )
        return None
    written = getattr(request, _DENIED_EVENT, None)
    if written is not None:
        return written
    pending = getattr(request, _DENIED_PENDING, None)
    if pending is None:
        pending = {"detail": {}, "obj": None, "release": None}
        setattr(request, _DENIED_PENDING, pending)
    for key, value in facts.items():
        pending["detail"].setdefault(key, value)  # the first, most specific reason wins
    pending["obj"] = pending["obj"] if pending["obj"] is not None else obj
    pending["release"] = pending["release"] if pending["release"] is not None else release
    if getattr(request, _DENIED_WATCHED, False):
        return None  # written by the middleware after the response
    return audit_denied_flush(request)


def audit_denied_flush(request: HttpRequest, *, status: int | None = None) -> AuditEvent | None:
    """Write the request's refusal, if one is pending and none is written yet, with ``status``,
    the answer given. Called by ``audit_denied`` and by ``DeniedAuditMiddleware``."""
    written = getattr(request, _DENIED_EVENT, None)
    if written is not None:
        return written
    pending = getattr(request, _DENIED_PENDING, None)
    if pending is None:
        return None
    detail = {"path": request.path[:500], "method": request.method, **pending["detail"]}
    if status is not None:
        detail.setdefault("status", status)
    event = audit_record(
        AuditKind.PERMISSION_DENIED,
        request=request,
        obj=pending["obj"],
        release=pending["release"],
        detail=detail,
    )
    setattr(request, _DENIED_EVENT, event)
    return event


# ---------------------------------------------------------------- sign-in events
def _on_logged_in(sender, request, user, **kwargs) -> None:
    from dcmms_release.security import mark_session_start

    mark_session_start(request)
    audit_record(AuditKind.LOGIN, request=request, actor=user)


def _on_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(AuditKind.LOGOUT, request=request, actor=user)


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Only the username leaves ``credentials`` (Django already masks the password)."""
    from dcmms_release.account_throttle import throttled_for

    typed = credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD) or ""
    detail = {"path": request.path[:500]} if request is not None else {}
    if throttled_for(request):  # refused before its password was checked (the account's delay)
        detail["throttled_seconds"] = throttled_for(request)
    audit_record(
        AuditKind.LOGIN_FAILED,
        request=request,
        actor=None,
        username=str(typed),
        detail=detail,
    )


def _on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    audit_record(
        AuditKind.LOCKOUT,
        request=request,
        actor=None,
        username=str(username or ""),
        detail={"ip_address": ip_address},
    )


def _on_attempt_deleted(sender, instance, **kwargs) -> None:
    """A lockout is lifted by deleting its access-attempt row (cool-off expiry, a successful
    sign-in after the cool-off, an administrator, or ``axes_reset``); record who did it when a
    request is at hand."""
    from django.conf import settings
    from simple_history.models import HistoricalRecords

    if instance.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return
    request = getattr(HistoricalRecords.context, "request", None)
    audit_record(
        AuditKind.UNLOCK,
        request=request,
        username=str(instance.username or ""),
        detail={"ip_address": instance.ip_address, "failures": instance.failures_since_start},
    )


# ---------------------------------------------------------------- other sessions end
def _remember_credentials(sender, instance, **kwargs) -> None:
    if instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    instance._dcmms_sessions_end = bool(old) and (
        old["password"] != instance.password or (old["is_active"] and not instance.is_active)
    )


def user_sessions_end(user, *, keep: str | None = None) -> int:
    """Delete every unexpired session signed in as ``user`` except the session key ``keep``."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key == keep:
            continue
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


def _end_other_sessions(sender, instance, created, **kwargs) -> None:
    if created or not getattr(instance, "_dcmms_sessions_end", False):
        return
    instance._dcmms_sessions_end = False
    from simple_history.models import HistoricalRecords

    request = getattr(HistoricalRecords.context, "request", None)
    keep = None
    if request is not None and _request_user(request) is not None:
        if request.user.pk == instance.pk and instance.is_active:
            keep = request.session.session_key  # the user changing their own password
    ended = user_sessions_end(instance, keep=keep)
    if ended:
        audit_record(
            AuditKind.SESSIONS_ENDED,
            request=request,
            username=instance.get_username(),
            obj=instance,
            detail={
                "sessions": ended,
                "reason": "deactivated" if not instance.is_active else "password changed",
            },
        )


def connect() -> None:
    from axes.models import AccessAttempt
    from axes.signals import user_locked_out

    user_model = get_user_model()
    user_logged_in.connect(_on_logged_in, dispatch_uid="dcmms_audit_login")
    user_logged_out.connect(_on_logged_out, dispatch_uid="dcmms_audit_logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="dcmms_audit_login_failed")
    user_locked_out.connect(_on_locked_out, dispatch_uid="dcmms_audit_lockout")
    post_delete.connect(_on_attempt_deleted, sender=AccessAttempt, dispatch_uid="dcmms_unlock")
    pre_save.connect(_remember_credentials, sender=user_model, dispatch_uid="dcmms_sess_pre")
    post_save.connect(_end_other_sessions, sender=user_model, dispatch_uid="dcmms_sess_post")
