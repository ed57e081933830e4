"""``manage.py refresh_release_access``: recompute everyone's access groups from the facts that
grant them (owner, membership, signing role), through ``release_access_refresh``. Run once after
an upgrade that adds a kind of access group — the release auditors' group, which lets an auditor
of a release read its audit trail — and whenever groups are suspected out of step. Idempotent."""

from django.core.management.base import BaseCommand

from checklist.models import Release
from signoffs.models import ReleaseMember, SignoffRequirement
from signoffs.services import release_access_refresh


def release_people(release: Release) -> set:
    """Everyone a fact gives access to the release: its owner, members and signers."""
    members = ReleaseMember.objects.filter(release=release).select_related("user")
    signers = SignoffRequirement.objects.filter(release=release, assignee__isnull=False)
    people = {member.user for member in members}
    people |= {requirement.assignee for requirement in signers.select_related("assignee")}
    if release.owner is not None:
        people.add(release.owner)
    return people


class Command(BaseCommand):
    help = "Recompute every release's access groups from owners, memberships and signing roles."

    def handle(self, *args, **options) -> None:
        refreshed = 0
        for release in Release.objects.select_related("owner").order_by("pk"):
            for user in release_people(release):
                release_access_refresh(release=release, user=user)
                refreshed += 1
        self.stdout.write(f"Access refreshed for {refreshed} person-release pair(s).")
