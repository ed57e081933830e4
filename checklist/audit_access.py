"""Changes of accounts and access as audit events (21 CFR Part 11 §11.10(e), ASVS 7.1.3/7.1.4).

Who may do what changes through models that are not ours (Django's users, groups and
permissions; guardian's object permissions), from the admin, from code or from a command, so
these receivers are the one place that sees every such change: an account created or deleted,
its superuser / staff / active flag or its password changed (never the hash), a group joined or
left (from either side), a model permission of a user or a group, an object permission granted
or taken. Each is one ``AuditEvent`` (linked into the hash chain like every other) naming the
actor, whom (``object_repr``), what changed from what to what (``detail``) and, for access to a
release, the release. Release membership, signing roles and ownership are recorded by their
services (``signoffs.services``) as the facts they are; the group and object-permission rows
``release_access_sync`` derives from them are not recorded a second time (``derived_access``).

The actor is the request's signed-in user (simple-history's middleware keeps the request), or
whoever ``acting_as`` names (a command), else nobody: the system. ``connect()`` is called once
from ``ChecklistConfig.ready()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, get_hasher, identify_hasher
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from .audit import _request_user, audit_record, current_request
from .models_audit import AuditKind

FLAGS = ("is_superuser", "is_staff", "is_active")
# the release groups of checklist.permissions._group
RELEASE_GROUP = re.compile(r"^release-(\d+)-(viewers|managers|auditors)$")

_actor: ContextVar[Any] = ContextVar("dcmms_audit_actor", default=None)
_derived: ContextVar[bool] = ContextVar("dcmms_access_derived", default=False)


@contextmanager
def acting_as(user) -> Iterator[None]:
    """Name the actor of the access changes made inside (a command has no request)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def derived_access() -> Iterator[None]:
    """Group and object-permission rows written inside follow from a fact its service already
    recorded (an owner, a signer, a member): they are not recorded again."""
    token = _derived.set(True)
    try:
        yield
    finally:
        _derived.reset(token)


def _record(kind: str, *, whom: str, release_id: int | None = None, detail: dict) -> None:
    request = current_request()
    actor = _actor.get() or _request_user(request)
    audit_record(
        kind,
        request=request,
        actor=actor,
        username=None if actor is not None else "",
        release=_ReleaseRef(release_id) if release_id else None,
        obj=whom,
        detail={**detail, "by": actor.get_username() if actor is not None else "system"},
    )


def access_record(kind: str, *, by, whom, release, detail: dict) -> None:
    """A release access fact (membership, signing role, ownership) recorded by its service:
    ``by`` is the actor (None: the current request's user, else the system), ``whom`` the
    person it is about, ``detail`` what changed from what to what."""
    name = whom.get_username() if hasattr(whom, "get_username") else str(whom or "")
    token = _actor.set(by) if by is not None else None
    try:
        _record(kind, whom=name, release_id=release.pk, detail={"user": name, **detail})
    finally:
        if token is not None:
            _actor.reset(token)


class _ReleaseRef:
    """A release by its key alone (audit_record reads ``pk``): no query for the row."""

    def __init__(self, pk: int):
        self.pk = pk


# ---------------------------------------------------------------- accounts
def _before_user_save(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    watched = {*FLAGS, "password"}
    if (
        raw
        or instance.pk is None
        or (update_fields is not None and not watched & set(update_fields))
    ):
        instance._dcmms_access_before = None
        return
    instance._dcmms_access_before = (
        sender._default_manager.filter(pk=instance.pk).values(*FLAGS, "password").first()
    )


def _password_changed(instance, old_hash: str, update_fields) -> bool:
    """A new hash of the same password is no change: the password set again, or re-hashed at
    sign-in because the hashing parameters changed (Django's ``check_password`` then saves only
    the password, with the raw one forgotten, over a hash its hasher wants updated)."""
    if old_hash == instance.password:
        return False
    raw = getattr(instance, "_password", None)
    if raw is not None:
        return not check_password(raw, old_hash)
    if set(update_fields or ()) == {"password"}:
        try:
            old_hasher = identify_hasher(old_hash)
        except ValueError:
            return True
        preferred = get_hasher("default")
        if old_hasher.algorithm != preferred.algorithm or preferred.must_update(old_hash):
            return False
    return True


def _after_user_save(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    if raw:
        return
    whom = instance.get_username()
    if created:
        flags = {flag: getattr(instance, flag) for flag in FLAGS}
        _record(AuditKind.ACCOUNT_CREATED, whom=whom, detail={"user": whom, **flags})
        return
    before = getattr(instance, "_dcmms_access_before", None)
    instance._dcmms_access_before = None
    if not before:
        return
    changes = {
        flag: {"old": before[flag], "new": getattr(instance, flag)}
        for flag in FLAGS
        if before[flag] != getattr(instance, flag)
    }
    if changes:
        _record(AuditKind.ACCOUNT_CHANGED, whom=whom, detail={"user": whom, "changes": changes})
    if _password_changed(instance, before["password"], update_fields):
        usable = instance.has_usable_password()
        _record(AuditKind.PASSWORD_CHANGED, whom=whom, detail={"user": whom, "usable": usable})


def _after_user_delete(sender, instance, **kwargs) -> None:
    whom = instance.get_username()
    _record(AuditKind.ACCOUNT_DELETED, whom=whom, detail={"user": whom})


# ---------------------------------------------------------------- groups and model permissions
def _label(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return obj.get_username() if hasattr(obj, "get_username") else str(obj)


def _m2m_shape(sender) -> tuple[str, str, str] | None:
    """(kind, subject's name in detail, attribute of the subject holding the items)."""
    user_model = get_user_model()
    if sender is user_model.groups.through:
        return AuditKind.GROUP_MEMBERSHIP_CHANGED, "user", "groups"
    if sender is user_model.user_permissions.through:
        return AuditKind.PERMISSIONS_CHANGED, "user", "user_permissions"
    if sender is Group.permissions.through:
        return AuditKind.PERMISSIONS_CHANGED, "group", "permissions"
    return None


def _release_of(groups) -> int | None:
    for group in groups:
        match = RELEASE_GROUP.match(getattr(group, "name", ""))
        if match:
            return int(match.group(1))
    return None


def _linked(sender, instance, model, pk_set) -> set:
    """The keys of ``model`` really linked to ``instance`` (among ``pk_set`` when given):
    remove() is told keys that may not be linked, clear() is told none."""
    source = next(
        f for f in sender._meta.fields if f.is_relation and isinstance(instance, f.related_model)
    )
    target = next(f for f in sender._meta.fields if f.is_relation and f.related_model is model)
    rows = sender._default_manager.filter(**{source.attname: instance.pk})
    if pk_set is not None:
        rows = rows.filter(**{f"{target.attname}__in": pk_set})
    return set(rows.values_list(target.attname, flat=True))


def _rows(manager_or_model):
    queryset = getattr(manager_or_model, "_default_manager", manager_or_model).all()
    if queryset.model is Permission:
        queryset = queryset.select_related("content_type")
    return queryset


def _on_m2m(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    shape = _m2m_shape(sender)
    if shape is None or _derived.get():
        return
    if action in ("pre_remove", "pre_clear"):
        instance._dcmms_m2m_removing = _linked(sender, instance, model, pk_set)
        return
    if action == "post_add":
        changed, verb = set(pk_set or ()), "added"
    elif action in ("post_remove", "post_clear"):
        changed, verb = getattr(instance, "_dcmms_m2m_removing", set()), "removed"
        instance._dcmms_m2m_removing = set()
    else:
        return
    if not changed:
        return
    kind, subject_name, attr = shape
    others = list(_rows(model).filter(pk__in=changed))
    subjects, items = (others, [instance]) if reverse else ([instance], others)
    for subject in subjects:
        after = sorted(_label(item) for item in _rows(getattr(subject, attr)))
        names = sorted(_label(item) for item in items)
        before = sorted(set(after) - set(names)) if verb == "added" else sorted({*after, *names})
        whom = _label(subject)
        groups = items if kind == AuditKind.GROUP_MEMBERSHIP_CHANGED else []
        _record(
            kind,
            whom=whom,
            release_id=_release_of(groups),
            detail={subject_name: whom, verb: names, "before": before, "after": after},
        )


# ---------------------------------------------------------------- object permissions (guardian)
def _object_permission(instance, granted: bool) -> None:
    if _derived.get():
        return
    holder_kind = "user" if getattr(instance, "user_id", None) else "group"
    try:  # a row deleted along with its holder, permission or object still names them
        holder = _label(getattr(instance, holder_kind))
    except ObjectDoesNotExist:
        holder = f"{holder_kind} {getattr(instance, f'{holder_kind}_id')}"
    content_type = ContentType.objects.get_for_id(instance.content_type_id)
    release_id = None
    if (content_type.app_label, content_type.model) == ("checklist", "release"):
        release_id = int(instance.object_pk)
    try:
        target = str(content_type.get_object_for_this_type(pk=instance.object_pk))
    except ObjectDoesNotExist:
        target = ""
    try:
        codename = instance.permission.codename
    except ObjectDoesNotExist:
        codename = f"permission {instance.permission_id}"
    _record(
        AuditKind.OBJECT_PERMISSION_CHANGED,
        whom=holder,
        release_id=release_id,
        detail={
            holder_kind: holder,
            "permission": f"{content_type.app_label}.{codename}",
            "object": f"{content_type.app_label}.{content_type.model} {instance.object_pk}",
            "object_repr": target[:300],
            "old": "revoked" if granted else "granted",
            "new": "granted" if granted else "revoked",
        },
    )


def _on_object_permission_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if created and not raw:
        _object_permission(instance, granted=True)


def _on_object_permission_deleted(sender, instance, **kwargs) -> None:
    _object_permission(instance, granted=False)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_before_user_save, sender=user_model, dispatch_uid="dcmms_access_pre")
    post_save.connect(_after_user_save, sender=user_model, dispatch_uid="dcmms_access_post")
    post_delete.connect(_after_user_delete, sender=user_model, dispatch_uid="dcmms_access_del")
    for through in (
        user_model.groups.through,
        user_model.user_permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(
            _on_m2m, sender=through, dispatch_uid=f"dcmms_access_{through._meta.label}"
        )
    # guardian's rows by name: checklist.permissions stays the one importer of guardian.
    for model in ("guardian.UserObjectPermission", "guardian.GroupObjectPermission"):
        post_save.connect(
            _on_object_permission_saved, sender=model, dispatch_uid=f"dcmms_objperm_s_{model}"
        )
        post_delete.connect(
            _on_object_permission_deleted, sender=model, dispatch_uid=f"dcmms_objperm_d_{model}"
        )
