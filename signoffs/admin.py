"""Admin for sign-off requirements (with their attestation statements and their signer), the
GO / NO-GO criteria (linked, through autocomplete, to the items, risks and sign-offs that decide
them), and read-only views of signatures and release access.

Signatures are never added, edited or deleted here: they are given, revoked and made stale by
``signoffs.services`` only — through a requirement's sign page (``<pk>/sign/``) and a
signature's revoke page (``<pk>/revoke/``), both in ``signoffs.admin_views``. Assigning a
signer goes through ``requirement_assign`` (it grants access, checks separation of duties and
makes the previous holder's signature stale)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from checklist.admin_base import EMPTY, AuditedAdmin, ReleaseScopedInline
from checklist.admin_reason import ReasonForChangeAdmin, ReasonForChangeForm

from .admin_views import (
    requirement_sign_view,
    signature_revoke_view,
    signature_state_badge,
    utc_display,
)
from .choices import SignatureState
from .models import (
    Attestation,
    Criterion,
    ReleaseMember,
    Signature,
    SignatureEvent,
    SignoffRequirement,
)
from .services import requirement_assign

LINK_FIELDS = ("items", "risks", "requirements")


class ReadOnlyAdmin(AuditedAdmin):
    """Viewed, never written from the admin: the rows are the record itself."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ---------------------------------------------------------------- requirements
class AttestationInline(ReleaseScopedInline, admin.TabularInline):
    model = Attestation
    fields = ("order", "text")
    extra = 0


class SignerForm(forms.Form):
    """Who signs a requirement's block: one active person, or nobody."""

    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"] = forms.ModelChoiceField(
            queryset=get_user_model().objects.filter(is_active=True),
            required=False,
            label="Signer",
            help_text="Leave empty to leave the role unassigned.",
            widget=AutocompleteSelect(SignoffRequirement._meta.get_field("assignee"), admin_site),
        )


@admin.register(SignoffRequirement)
class SignoffRequirementAdmin(AuditedAdmin):
    """One role's sign-off block per release, with the statements its signer affirms. The
    signer is set on its own page, through ``requirement_assign``."""

    list_display = (
        "role",
        "release__version",
        "tier",
        "order",
        "final_decision",
        "assignee",
        "attestation_count",
        "sign_link",
    )
    list_filter = ("release", "tier", "final_decision")
    search_fields = ("role", "release__version")
    list_select_related = ("release", "assignee")
    autocomplete_fields = ("release",)
    fields = ("release", "role", "tier", "order", "final_decision", "signer", "signing")
    readonly_fields = ("signer", "signing")
    inlines = (AttestationInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The label names the release (autocomplete too): fetch it with the rows.
        return (
            super()
            .get_queryset(request)
            .select_related("release", "assignee")
            .annotate(attestations_count=Count("attestations"))
        )

    @admin.display(description="Attestations", ordering="attestations_count")
    def attestation_count(self, obj: SignoffRequirement) -> int:
        return getattr(obj, "attestations_count", 0)

    @admin.display(description="Signer")
    def signer(self, obj: SignoffRequirement) -> SafeString | str:
        if obj.pk is None:
            return "Assigned once the requirement is saved."
        url = reverse("admin:signoffs_signoffrequirement_assign", args=[obj.pk])
        who = obj.assignee.get_username() if obj.assignee_id else "nobody"
        return format_html('{} · <a href="{}">Change the signer</a>', who, url)

    @admin.display(description="Sign")
    def sign_link(self, obj: SignoffRequirement) -> SafeString:
        url = reverse("admin:signoffs_signoffrequirement_sign", args=[obj.pk])
        return format_html('<a href="{}">Sign…</a>', url)

    @admin.display(description="Signing")
    def signing(self, obj: SignoffRequirement) -> SafeString | str:
        if obj.pk is None:
            return EMPTY
        url = reverse("admin:signoffs_signoffrequirement_sign", args=[obj.pk])
        return format_html(
            '<a href="{}">Sign-off page</a>: what is affirmed, what changed, the gate, '
            "every signature of this role, and the form for its signer.",
            url,
        )

    def get_urls(self) -> list:
        assign = path(
            "<path:object_id>/assign/",
            self.admin_site.admin_view(self.assign_view),
            name="signoffs_signoffrequirement_assign",
        )
        sign = path(
            "<path:object_id>/sign/",
            self.admin_site.admin_view(self.sign_view),
            name="signoffs_signoffrequirement_sign",
        )
        return [assign, sign, *super().get_urls()]

    def sign_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The requirement's sign page (``signoffs.admin_views``): 404 unless the user may see
        the release; only its assignee may sign, through ``signature_give``."""
        return requirement_sign_view(self, request, object_id)

    def assign_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Choose the signer of one requirement; ``requirement_assign`` decides whether it may
        happen and the refusal is shown as an error."""
        requirement = self.get_object(request, unquote(object_id))
        if requirement is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, requirement):
            raise PermissionDenied
        form = SignerForm(
            request.POST or None,
            initial={"assignee": requirement.assignee_id},
            admin_site=self.admin_site,
        )
        if request.method == "POST" and form.is_valid():
            assignee = form.cleaned_data["assignee"]
            try:
                requirement_assign(requirement=requirement, assignee=assignee, by=request.user)
            except PermissionDenied as error:
                self.report_denied(request, error, release=requirement.release)
            except ValidationError as error:
                self.report_validation_error(request, error)
            else:
                who = assignee.get_username() if assignee else "nobody"
                self.log_change(request, requirement, f"Signer set to {who}.")
                self.message_user(
                    request, f"{requirement.role} is now signed by {who}.", messages.SUCCESS
                )
                change = reverse("admin:signoffs_signoffrequirement_change", args=[requirement.pk])
                return HttpResponseRedirect(change)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Signer of {requirement}",
            "opts": self.opts,
            "original": requirement,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/signoffs/signoffrequirement/assign.html", context)


@admin.register(Attestation)
class AttestationAdmin(AuditedAdmin):
    """A statement on its own, for its history; normally edited inline on its requirement."""

    release_path = "requirement__release"
    list_display = ("text_short", "requirement", "order")
    list_filter = ("requirement__release",)
    search_fields = ("text", "requirement__role")
    list_select_related = ("requirement__release",)
    autocomplete_fields = ("requirement",)

    @admin.display(description="Statement", ordering="text")
    def text_short(self, obj: Attestation) -> str:
        return Truncator(obj.text).chars(90)


# ---------------------------------------------------------------- criteria
class CriterionForm(ReasonForChangeForm):
    """A criterion links only to its own release's items, risks and sign-offs, and carries a
    manual verdict only when nothing is linked (linked things decide it otherwise); with the
    reason for change."""

    class Meta:
        model = Criterion
        fields = ("release", "kind", "group", "order", "text", *LINK_FIELDS, "manual_verdict")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        release = data.get("release")
        if release is not None:
            for name in LINK_FIELDS:
                strangers = [str(o) for o in data.get(name) or () if o.release_id != release.pk]
                if strangers:
                    self.add_error(name, f"Not in {release}: {'; '.join(strangers)}")
        linked = any(data.get(name) for name in LINK_FIELDS)
        if linked and data.get("manual_verdict") is not None:
            self.add_error(
                "manual_verdict",
                "Linked items, risks or sign-offs decide this criterion: leave the manual "
                "verdict empty, or remove the links.",
            )
        return data


@admin.register(Criterion)
class CriterionAdmin(ReasonForChangeAdmin, AuditedAdmin):
    """GO criteria (all must be met) and NO-GO blockers (any one delays the release)."""

    form = CriterionForm
    list_display = ("text_short", "kind", "group", "release__version", "linked", "manual_verdict")
    list_filter = ("release", "kind", "group")
    search_fields = ("text", "group")
    list_select_related = ("release",)
    autocomplete_fields = ("release", *LINK_FIELDS)
    fields = CriterionForm.Meta.fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                items_count=Count("items", distinct=True),
                risks_count=Count("risks", distinct=True),
                requirements_count=Count("requirements", distinct=True),
            )
        )

    @admin.display(description="Criterion", ordering="text")
    def text_short(self, obj: Criterion) -> str:
        return Truncator(obj.text).chars(90)

    @admin.display(description="Linked")
    def linked(self, obj: Criterion) -> str:
        counts = (
            (getattr(obj, "items_count", 0), "item"),
            (getattr(obj, "risks_count", 0), "risk"),
            (getattr(obj, "requirements_count", 0), "sign-off"),
        )
        parts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts if n]
        return ", ".join(parts) or "— (manual verdict)"


# ---------------------------------------------------------------- the record (read-only)
class SignatureEventInline(ReleaseScopedInline, admin.TabularInline):
    model = SignatureEvent
    fields = ("at", "from_state", "to_state", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("actor")


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    """Every signature with its printed name, role, meaning, server time and the hash of what
    was signed; its state changes are listed below it, oldest first."""

    list_display = (
        "printed_role",
        "printed_name",
        "meaning",
        "signed_at_utc",
        "state_badge",
        "release__version",
        "fingerprint",
    )
    list_filter = ("release", "state", "meaning")
    search_fields = ("printed_name", "printed_role", "signer__username", "comment")
    list_select_related = ("release",)
    readonly_fields = ("state_badge", "revoke_link")
    inlines = (SignatureEventInline,)

    @admin.display(description="Signed at (UTC)", ordering="signed_at")
    def signed_at_utc(self, obj: Signature) -> str:
        return utc_display(obj.signed_at)

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: Signature) -> SafeString:
        return signature_state_badge(obj)

    @admin.display(description="Revoke")
    def revoke_link(self, obj: Signature) -> SafeString | str:
        if obj.state == SignatureState.REVOKED:
            return "Revoked: see the state changes below."
        url = reverse("admin:signoffs_signature_revoke", args=[obj.pk])
        return format_html('<a href="{}">Revoke…</a> (only its signer can)', url)

    def get_urls(self) -> list:
        revoke = path(
            "<path:object_id>/revoke/",
            self.admin_site.admin_view(self.revoke_view),
            name="signoffs_signature_revoke",
        )
        return [revoke, *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The signer withdraws the signature with a reason, through ``signature_revoke``;
        404 unless the user may see the release, 403 for anyone but the signer."""
        return signature_revoke_view(self, request, object_id)

    @admin.display(description="SHA-256 (start)")
    def fingerprint(self, obj: Signature) -> str:
        return obj.snapshot_sha256[:16] + "…" if obj.snapshot_sha256 else EMPTY


@admin.register(ReleaseMember)
class ReleaseMemberAdmin(ReadOnlyAdmin):
    """Who has product-manager, stakeholder or auditor access to which release. Granted and
    removed by ``member_set`` (it keeps the permission groups in step), not edited here."""

    list_display = ("user", "role", "release__version")
    list_filter = ("release", "role")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    list_select_related = ("release", "user")


from . import admin_records, admin_reminders  # noqa: E402,F401
