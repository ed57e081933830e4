"""Who may see and change which release: the one module that talks to django-guardian.

Each release has two groups holding object permissions on it — its viewers (view_release) and
its managers (view_release, change_release). People are put in or taken out of those groups by
`release_access_sync`, from the facts that give access (owning the release, a membership, a
signing role), so a removed assignment removes the access at once. Model-level permissions
never widen this: the queries below ask guardian with accept_global_perms=False.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db.models import QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user

from .models import Item, Release

VIEW = "checklist.view_release"
CHANGE = "checklist.change_release"
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
        assign_perm(VIEW, group, release)
        if kind == "managers":
            assign_perm(CHANGE, group, release)
    return group


def release_access_sync(
    *, release: Release, user: AbstractBaseUser, view: bool, manage: bool
) -> None:
    """Put the user in, or take them out of, the release's viewer and manager groups."""
    for kind, wanted in (("viewers", view), ("managers", manage)):
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


def can_view_release(user, release: Release) -> bool:
    return visible_releases(user).filter(pk=release.pk).exists()


def can_manage_release(user, release: Release) -> bool:
    return managed_releases(user).filter(pk=release.pk).exists()


def item_editable_fields(user, item: Item) -> tuple[str, ...] | None:
    """None when the user may change every field of the item (they manage the release); the
    owner's fields (status, actual, evidence) when they own it; () otherwise."""
    if can_manage_release(user, item.release):
        return None
    if user.is_authenticated and item.owner_id == user.pk and can_view_release(user, item.release):
        return ITEM_OWNER_FIELDS
    return ()
