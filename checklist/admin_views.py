"""The release's own admin pages beyond its form: who holds which role (owner, signers,
members), reopening a decided release, and the JSON / Markdown / CSV exports. Each view re-checks
permission (404 for a release the user may not see; managing it to change anything) and calls
one service per change, all in one transaction. Every export handed out is an audit event
(``record_download``); a refused one records nothing."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from signoffs.choices import MemberRole
from signoffs.exports import release_snapshot
from signoffs.markdown_export import release_export_markdown
from signoffs.models import ReleaseMember, SignoffRequirement
from signoffs.records import download_audit
from signoffs.services import member_set, release_reopen, release_set_owner, requirement_assign

from .csv_export import release_items_csv
from .downloads import attachment_response, download_filename
from .models import Release
from .permissions import may_manage, visible_releases
from .validators import REASON


def _release(request: HttpRequest, object_id: str, *, manage: bool = False) -> Release:
    release = get_object_or_404(visible_releases(request.user), pk=object_id)
    if manage and not may_manage(request.user, release):
        raise PermissionDenied("Only the release's product managers change its roles.")
    return release


def _people(release: Release, *, manages: bool):
    """Who the page's pickers offer: to a manager every active person (anyone may be given a
    role); to anyone else only the people who already hold one on this release, which the page
    shows anyway — never the organisation's directory."""
    people = get_user_model().objects.filter(is_active=True).order_by("username")
    if manages:
        return people
    on_release = Q(pk=release.owner_id) | Q(
        pk__in=SignoffRequirement.objects.filter(release=release).values("assignee")
    )
    on_release |= Q(pk__in=ReleaseMember.objects.filter(release=release).values("user"))
    return people.filter(on_release)


class RolesForm(forms.Form):
    """Owner, one signer per requirement, and members to add; current members can be removed."""

    def __init__(self, *args, release: Release, manages: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = release
        self.requirements = list(
            SignoffRequirement.objects.filter(release=release).select_related("assignee")
        )
        self.members = list(ReleaseMember.objects.filter(release=release).select_related("user"))
        people = _people(release, manages=manages)
        self.fields["owner"] = forms.ModelChoiceField(
            people, initial=release.owner_id, label="Owner (product manager)", required=False
        )
        for requirement in self.requirements:
            label = f"{requirement.role}" + (
                " — final decision" if requirement.final_decision else ""
            )
            self.fields[f"signer_{requirement.pk}"] = forms.ModelChoiceField(
                people, initial=requirement.assignee_id, label=label, required=False
            )
        for member in self.members:
            self.fields[f"remove_{member.pk}"] = forms.BooleanField(
                required=False,
                label=f"Remove {member.user.get_username()} ({member.get_role_display()})",
            )
        self.fields["add_user"] = forms.ModelChoiceField(
            people, required=False, label="Add a person"
        )
        self.fields["add_role"] = forms.ChoiceField(
            choices=MemberRole.choices, required=False, label="as"
        )

    def signer_fields(self):
        return [self[f"signer_{r.pk}"] for r in self.requirements]

    def remove_fields(self):
        return [self[f"remove_{m.pk}"] for m in self.members]


@transaction.atomic
def _apply_roles(form: RolesForm, by) -> list[str]:
    """Every change through its service; any refusal rolls all of them back. Removals and
    signers go before the owner, so that one save can hand a signing role to someone else and
    make its former holder the owner (separation of duties checks each step)."""
    done: list[str] = []
    for member in form.members:
        if form.cleaned_data[f"remove_{member.pk}"]:
            member_set(release=form.release, user=member.user, role=None, by=by)
            done.append(f"Removed {member.user.get_username()}")
    for requirement in form.requirements:
        signer = form.cleaned_data[f"signer_{requirement.pk}"]
        if (signer.pk if signer else None) != requirement.assignee_id:
            requirement_assign(requirement=requirement, assignee=signer, by=by)
            done.append(f"{requirement.role}: {signer.get_username() if signer else 'nobody'}")
    owner = form.cleaned_data["owner"]
    if owner is not None and owner.pk != form.release.owner_id:
        release_set_owner(release=form.release, owner=owner, by=by)
        done.append(f"Owner: {owner.get_username()}")
    user, role = form.cleaned_data["add_user"], form.cleaned_data["add_role"]
    if user is not None and role:
        member_set(release=form.release, user=user, role=role, by=by)
        done.append(f"{user.get_username()}: {MemberRole(role).label}")
    return done


def roles_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    release = _release(request, object_id)
    can_change = may_manage(request.user, release)
    form = RolesForm(request.POST or None, release=release, manages=can_change)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied("Only the release's product managers change its roles.")
        if form.is_valid():
            try:
                done = _apply_roles(form, request.user)
            except PermissionDenied as error:
                model_admin.report_denied(request, error, release=release)
            except ValidationError as error:
                model_admin.report_validation_error(request, error)
            else:
                # Each change is its own audit event, written by its service (owner and signer:
                # role_assignment_changed; member: release_member_changed): one event per fact.
                model_admin.message_user(
                    request,
                    "Saved: " + ("; ".join(done) if done else "no change"),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(request.path)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Roles and access — {release}",
        "opts": model_admin.model._meta,
        "original": release,
        "form": form,
        "can_change": can_change,
    }
    return TemplateResponse(request, "admin/checklist/release/roles.html", context)


class ReopenForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="Why reopen?", max_length=REASON
    )


def reopen_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    release = _release(request, object_id, manage=True)
    form = ReopenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            release_reopen(release=release, by=request.user, reason=form.cleaned_data["reason"])
        except PermissionDenied as error:
            model_admin.report_denied(request, error, release=release)
        except ValidationError as error:
            model_admin.report_validation_error(request, error)
        else:
            model_admin.message_user(
                request,
                "Reopened: the decision is stale and the release is in review again.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:checklist_release_change", args=[release.pk])
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Reopen {release}",
        "opts": model_admin.model._meta,
        "original": release,
        "form": form,
    }
    return TemplateResponse(request, "admin/checklist/release/reopen.html", context)


EXPORTS = {
    "json": ("application/json", "json"),
    "md": ("text/markdown; charset=utf-8", "md"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}


def _export_body(release: Release, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(release_snapshot(release), sort_keys=True, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return release_items_csv(release)
    return release_export_markdown(release)


def export_view(model_admin, request: HttpRequest, object_id: str, fmt: str) -> HttpResponse:
    """The release as its JSON record, as a Markdown checklist or its items as a spreadsheet
    (CSV), as a download; each download audited with the SHA-256 of what was handed out."""
    if fmt not in EXPORTS:
        raise Http404("Unknown export format.")
    release = _release(request, object_id)
    data = _export_body(release, fmt).encode("utf-8")
    download_audit(
        request=request,
        release=release,
        obj=release,
        data=data,
        what="release export",
        state="live",
        fmt=fmt,
    )
    content_type, extension = EXPORTS[fmt]
    filename = download_filename("release", release.pk, extension=extension)
    return attachment_response(data, filename=filename, content_type=content_type)
