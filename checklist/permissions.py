"""Who may see and change which release: the one module that talks to django-guardian.

Each release has three groups holding object permissions on it — its viewers (view_release),
its managers (view_release, change_release) and its auditors (view_release; they also read the
release's audit trail). People are put in or taken out of those groups by
`release_access_sync`, from the facts that give access (owning the release, a membership, a
signing role), so a removed assignment removes the access at once. Model-level permissions
never widen this: the queries below ask guardian with accept_global_perms=False.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user

from .audit import audit_denied, current_request
from .audit_access import derived_access
from .models import Item, Release

VIEW = "checklist.view_release"
CHANGE = "checklist.change_release"
ORGANISATION_AUDITORS = "Organisation auditors"
ITEM_OWNER_FIELDS = (
    "status",
    "checked",
    "actual_value",
    "actual_text",
    "actual_unit",
    "evidence_link",
    "evidence_note",
)


def _group(release: Release, kind: str) -> Group:
    group, created = Group.objects.get_or_create(name=f"release-{release.pk}-{kind}")
    if created:
        # Every group of the release holds its view permission on it: the retention purge
        # takes the groups that grant something on a purged release only (retention_rows).
        assign_perm(VIEW, group, release)
        if kind == "managers":
            assign_perm(CHANGE, group, release)
    return group


def release_access_sync(
    *,
    release: Release,
    user: AbstractBaseUser,
    view: bool,
    manage: bool,
    audit: bool = False,
) -> None:
    """Put the user in, or take them out of, the release's viewer, manager and auditor groups
    (its auditors read its audit trail: ``audited_releases``). The
    fact that grants the access (owner, member, signer) is the audit event its service writes;
    these derived group and permission rows are not recorded a second time."""
    with derived_access():
        for kind, wanted in (("viewers", view), ("managers", manage), ("auditors", audit)):
            group = _group(release, kind)
            if wanted:
                user.groups.add(group)
            else:
                user.groups.remove(group)


def visible_releases(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Release]:
    """The releases a user may see: superusers all, everyone else only those granted to them."""
    if not user.is_authenticated or not user.is_active:
        return Release.objects.none()
    if user.is_superuser:
        return Release.objects.all()
    return get_objects_for_user(user, VIEW, klass=Release.objects.all(), accept_global_perms=False)


def managed_releases(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Release]:
    if not user.is_authenticated or not user.is_active:
        return Release.objects.none()
    if user.is_superuser:
        return Release.objects.all()
    return get_objects_for_user(
        user, CHANGE, klass=Release.objects.all(), accept_global_perms=False
    )


def is_organisation_auditor(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Reads the whole audit trail (every release's events, and those tied to no release:
    sign-ins, lockouts, purges): a superuser, or a member of the group "Organisation auditors"
    — an explicit grant, separate from being an auditor of some releases."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=ORGANISATION_AUDITORS).exists()


def audited_releases(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Release]:
    """The releases whose audit trail the user reads: every release for an organisation-wide
    auditor; otherwise those they are an auditor of (the release's auditors group)."""
    if not user.is_authenticated or not user.is_active:
        return Release.objects.none()
    if is_organisation_auditor(user):
        return Release.objects.all()
    names = user.groups.filter(name__startswith="release-", name__endswith="-auditors")
    ids = [name.split("-")[1] for name in names.values_list("name", flat=True)]
    return Release.objects.filter(pk__in=[int(pk) for pk in ids if pk.isdigit()])


def can_view_release(user, release: Release) -> bool:
    return visible_releases(user).filter(pk=release.pk).exists()


def may_manage(user, release: Release) -> bool:
    """The release's managers: a superuser, its owner, or one of its product managers (the
    managers group); an inactive or anonymous user never."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or release.owner_id == user.pk:
        return True
    return managed_releases(user).filter(pk=release.pk).exists()


def item_editable_fields(user, item: Item) -> tuple[str, ...] | None:
    """None when the user may change every field of the item (they manage the release); the
    owner's fields (status, actual, evidence) when they own it; () otherwise."""
    if may_manage(user, item.release):
        return None
    if user.is_authenticated and item.owner_id == user.pk and can_view_release(user, item.release):
        return ITEM_OWNER_FIELDS
    return ()


def may_edit_item(user, item: Item) -> bool:
    """A manager of the item's release, or the item's owner (status, actual, evidence)."""
    return item_editable_fields(user, item) != ()


# ---------------------------------------------------------------- services ask here
# Every service that writes asks one of the ``require_*`` functions below, whatever view,
# command or task calls it. ``user`` None is the system (a management command, a task, the
# demo setup): allowed only where no web request is being served, so a view can never skip the
# check by passing no user. A refusal is a PermissionDenied (the admin shows its message as an
# error) and one ``permission_denied`` audit event.


def _refuse(user, *, action: str, release: Release | None, message: str) -> None:
    audit_denied(user, reason=message, release=release, detail={"action": action})
    raise PermissionDenied(message)


def _require_system(action: str) -> None:
    request = current_request()
    if request is not None:
        audit_denied(request, reason=f"{action}: no user given", detail={"action": action})
        raise PermissionDenied(
            f"{action}: a request acts as its signed-in user, never as the system."
        )


def _named(user, release: Release) -> str:
    """The release's name for a refusal, only to someone who may see it."""
    return str(release) if can_view_release(user, release) else "this release"


def require_manage(user, release: Release, *, action: str) -> None:
    """Refuse ``action`` on ``release`` unless ``user`` manages it (``may_manage``)."""
    if user is None:
        _require_system(action)
        return
    if not may_manage(user, release):
        _refuse(
            user,
            action=action,
            release=release,
            message=f"{action} refused: you do not manage {_named(user, release)}.",
        )


def may_import(user) -> bool:
    """Who may import a checklist as a release: an active user holding the model permission to
    add releases (the product managers' group has it), or a superuser."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm("checklist.add_release")


def require_import(user, *, action: str = "Import a checklist") -> None:
    """Refuse an upload (direct or queued for the worker) unless ``user`` may import."""
    if user is None:
        _require_system(action)
        return
    if not may_import(user):
        _refuse(
            user,
            action=action,
            release=None,
            message=f"{action} refused: you may not add releases.",
        )


def require_edit_items(user, items: Iterable[Item], *, action: str) -> None:
    """Refuse ``action`` on the items, all of them, unless ``user`` may change each one: a
    manager of its release, or its owner (who may set the status of their own items). The
    managers question is asked once per release, not once per item."""
    if user is None:
        _require_system(action)
        return
    managed: dict[int, bool] = {}
    viewed: dict[int, bool] = {}
    refused: list[Item] = []
    for item in items:
        release = item.release
        if release.pk not in managed:
            managed[release.pk] = may_manage(user, release)
        if managed[release.pk]:
            continue
        if user.is_authenticated and user.is_active and item.owner_id == user.pk:
            if release.pk not in viewed:
                viewed[release.pk] = can_view_release(user, release)
            if viewed[release.pk]:
                continue
        refused.append(item)
    if refused:
        release = refused[0].release
        where = _named(user, release)
        _refuse(
            user,
            action=action,
            release=release,
            message=(
                f"{action} refused: {len(refused)} item(s) of {where} are neither in a release "
                "you manage nor yours; nothing was changed."
            ),
        )
