"""The signing side of the admin: a requirement's sign page, a signature's revoke page, and the
renderers other pages embed (a signature's state badge, the release's sign-off matrix and its
go/no-go gate).

The views re-check access (a release the user may not see is a 404, never a 403 that confirms
it exists), read only what a signer chooses (meaning, comment, the user ID on the session's
first signing, password) and the version of the release the page showed (``signoffs.shown``),
and leave every rule and every write to ``signoffs.services``; a refusal is shown, and nothing
is written. Every user string is escaped (``format_html`` here,
autoescape in the templates)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import Model, Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from checklist.audit import audit_denied
from checklist.models import Item, Release
from checklist.validators import REASON

from .changes import release_changes_since, review_opened_at
from .choices import MEANINGS_NEEDING_REASON, CriterionKind, SignatureState
from .gates import (
    CriterionResult,
    allowed_meanings,
    criteria_evaluate,
    go_refusals,
    revocation_refusals,
)
from .gates import signing_refusals as gate_signing_refusals
from .models import Signature, SignatureEvent, SignoffRequirement
from .services import signature_give, signature_revoke
from .shown import ReleaseChanged, Shown, release_shown, release_shown_forget, shown_token
from .sign_form import SignForm
from .signing_session import signing_needs_user_id
from .summary import release_full_summary

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

EMPTY = "—"
CHANGES_SHOWN = 100
SIGN_TEMPLATE = "admin/signoffs/signoffrequirement/sign.html"
REVOKE_TEMPLATE = "admin/signoffs/signature/revoke.html"

_PILL = "padding:1px 6px;border-radius:8px;white-space:nowrap;"


# ---------------------------------------------------------------- small renderers
def utc_display(value: datetime.datetime | None) -> str:
    """A server time as stored, in UTC with its offset: '2026-11-29 08:15:02 UTC+00:00'."""
    if value is None:
        return EMPTY
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC+00:00")


def signature_state_badge(signature: Signature) -> SafeString:
    """A signature's state that cannot be mistaken: green '✔ Valid'; amber, bold, '⚠ STALE —
    the release changed after signing'; grey '✘ REVOKED' with the meaning struck through."""
    if signature.state == SignatureState.VALID:
        return format_html(
            '<span class="signature-state signature-valid" style="{}">{}</span>',
            _PILL + "color:#14532d;background:#dcfce7",
            "✔ Valid",
        )
    if signature.state == SignatureState.STALE:
        return format_html(
            '<span class="signature-state signature-stale" style="{}">{}</span>',
            _PILL + "color:#78350f;background:#fde68a;font-weight:bold",
            "⚠ STALE — the release changed after signing",
        )
    return format_html(
        '<span class="signature-state signature-revoked" style="{}"><s>{}</s> {}</span>',
        _PILL + "color:#4b5563;background:#e5e7eb",
        signature.get_meaning_display(),
        "✘ REVOKED",
    )


def _person(user: Any) -> str:
    if user is None:
        return "unassigned"
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def _sign_url(requirement: SignoffRequirement) -> str:
    return reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])


def _table(css_class: str, columns: tuple[str, ...], rows: SafeString) -> SafeString:
    header = format_html_join("", "<th>{}</th>", ((column,) for column in columns))
    return format_html(
        '<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        css_class,
        header,
        rows,
    )


# ---------------------------------------------------------------- the sign-off matrix
MATRIX_COLUMNS = (
    "Role",
    "Tier",
    "Signer",
    "State",
    "Printed name",
    "Signed at (UTC)",
    "Meaning",
    "Comment",
    "",
)


def _current_signatures(release: Release) -> dict[int, Signature]:
    """Each requirement's latest signature (a valid one is always the latest: a new signature
    is only possible once the previous one is stale or revoked)."""
    current: dict[int, Signature] = {}
    for signature in Signature.objects.filter(release=release).order_by("signed_at", "pk"):
        current[signature.requirement_id] = signature
    return current


def signature_state_html(signature: Signature | None) -> SafeString:
    """'Not signed', or what was recorded (Approved / Rejected / GO / DEFER) and its state."""
    if signature is None:
        return format_html('<span class="signature-none">{}</span>', "Not signed")
    if signature.state == SignatureState.REVOKED:
        return signature_state_badge(signature)
    return format_html(
        "<strong>{}</strong> {}", signature.get_meaning_display(), signature_state_badge(signature)
    )


def _matrix_row(requirement: SignoffRequirement, signature: Signature | None) -> SafeString:
    role = requirement.role
    if requirement.final_decision:
        role = format_html("{} <strong>{}</strong>", role, "★ Final decision")
    cells = (
        role,
        requirement.get_tier_display(),
        _person(requirement.assignee),
        signature_state_html(signature),
        signature.printed_name if signature else EMPTY,
        utc_display(signature.signed_at) if signature else EMPTY,
        signature.get_meaning_display() if signature else EMPTY,
        (signature.comment or EMPTY) if signature else EMPTY,
        format_html('<a href="{}">Sign-off page</a>', _sign_url(requirement)),
    )
    return format_html(
        '<tr class="{}">{}</tr>',
        "signoff-final" if requirement.final_decision else "signoff-role",
        format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)),
    )


def signoff_matrix_html(release: Release) -> SafeString:
    """The release's sign-off matrix: one row per requirement, in order, with its signer and
    its current signature (printed name, UTC time, meaning, comment, state). Two queries."""
    requirements = (
        SignoffRequirement.objects.filter(release=release)
        .select_related("assignee")
        .order_by("order", "pk")
    )
    current = _current_signatures(release)
    rows = format_html_join("", "{}", ((_matrix_row(r, current.get(r.pk)),) for r in requirements))
    if not rows:
        return format_html('<p class="signoff-matrix-empty">{}</p>', "No sign-off requirements.")
    return _table("signoff-matrix", MATRIX_COLUMNS, rows)


# ---------------------------------------------------------------- the go/no-go gate
def criterion_verdict(result: CriterionResult) -> str:
    if result.criterion.kind == CriterionKind.GO:
        return "✔ met" if result.holds else "✘ not met"
    if result.holds is None:
        return "? not assessed"
    return "✘ fires" if result.holds else "✔ clear"


def _criterion_row(result: CriterionResult) -> SafeString:
    criterion = result.criterion
    colour = "#b91c1c" if result.blocks_go else "#15803d"
    return format_html(
        '<tr><td>{}</td><td>{}</td><td>{}</td><td style="color:{};font-weight:bold">{}</td>'
        "<td>{}</td></tr>",
        criterion.get_kind_display(),
        criterion.group or EMPTY,
        criterion.text,
        colour,
        criterion_verdict(result),
        result.why,
    )


def gate_html(release: Release) -> SafeString:
    """The computed go/no-go verdict: whether GO can be recorded now, every reason it cannot
    (each missing sign-off by role), and each criterion with its verdict and why."""
    refusals = go_refusals(release)
    if refusals:
        verdict = format_html(
            '<p class="gate-verdict gate-blocked" style="color:#b91c1c;font-weight:bold">{}</p>',
            "✘ GO not possible yet",
        )
    else:
        verdict = format_html(
            '<p class="gate-verdict gate-open" style="color:#15803d;font-weight:bold">{}</p>',
            "✔ GO possible",
        )
    reasons = format_html_join("", "<li>{}</li>", ((reason,) for reason in refusals))
    listing = format_html('<ul class="gate-refusals">{}</ul>', reasons) if refusals else ""
    results = criteria_evaluate(release)
    rows = format_html_join("", "{}", ((_criterion_row(result),) for result in results))
    criteria = (
        _table("gate-criteria", ("Kind", "Group", "Criterion", "Verdict", "Why"), rows)
        if results
        else format_html("<p>{}</p>", "No GO / NO-GO criteria.")
    )
    return format_html('<div class="gate">{}{}{}</div>', verdict, listing, criteria)


# ---------------------------------------------------------------- forms
class RevokeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        required=False,  # signature_revoke refuses an empty reason, in its own words
        max_length=REASON,
        label="Reason",
        help_text="Why you withdraw this signature; it stays visible, marked revoked.",
    )


# ---------------------------------------------------------------- access
def _visible(model_admin: ModelAdmin, request: HttpRequest, object_id: str) -> Model:
    """The object, when the user may see its release; otherwise 404, as for a missing one."""
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404("No such object.")
    return obj


def signing_preconditions(requirement: SignoffRequirement, user: Any) -> list[str]:
    """Why ``user`` cannot sign ``requirement`` now, whatever they would record: the gate's
    answer for the meaning that asks least of them (one needing a reason, with a reason), so
    that only who, when and whether-already-signed remain. GO's own conditions are shown
    separately and decided when GO is chosen."""
    meaning = next(m for m in allowed_meanings(requirement) if m in MEANINGS_NEEDING_REASON)
    return gate_signing_refusals(
        requirement=requirement, user=user, meaning=meaning, comment="(a reason)"
    )


# ---------------------------------------------------------------- the sign page
def _signature_history(requirement: SignoffRequirement, user: Any) -> list[dict[str, Any]]:
    signatures = (
        Signature.objects.filter(requirement=requirement)
        .prefetch_related(
            Prefetch("events", queryset=SignatureEvent.objects.select_related("actor"))
        )
        .order_by("-signed_at", "-pk")
    )
    return [
        {
            "signature": signature,
            "badge": signature_state_badge(signature),
            "signed_at": utc_display(signature.signed_at),
            "revoke_url": (
                reverse("admin:signoffs_signature_revoke", args=[signature.pk])
                if signature.signer_id == user.pk and signature.state != SignatureState.REVOKED
                else ""
            ),
            "events": [
                {
                    "event": event,
                    "at": utc_display(event.at),
                    "actor": _person(event.actor) if event.actor_id else "system",
                }
                for event in signature.events.all()
            ],
        }
        for signature in signatures
    ]


def _changes_context(requirement: SignoffRequirement) -> dict[str, Any]:
    """What changed since this role last signed or, never signed, since the review opened."""
    release = requirement.release
    last = (
        Signature.objects.filter(requirement=requirement)
        .order_by("-signed_at")
        .values_list("signed_at", flat=True)
        .first()
    )
    if last is not None:
        since, label = last, f"since {requirement.role} last signed ({utc_display(last)})"
    else:
        since = review_opened_at(release)
        label = (
            f"since the review opened ({utc_display(since)})"
            if since
            else "since the release was created (the review has not been opened)"
        )
    rows, more = _change_rows(release, since)
    return {
        "changes_label": label,
        "changes": rows,
        "changes_more": more,
        "changes_limit": CHANGES_SHOWN,
    }


def _change_rows(release: Release, since: datetime.datetime | None) -> tuple[list[dict], bool]:
    """The latest CHANGES_SHOWN changes after ``since`` for the page, and whether there are more."""
    changes = release_changes_since(release, since, limit=CHANGES_SHOWN + 1)
    rows = [{"change": change, "when": utc_display(change.when)} for change in changes]
    return rows[:CHANGES_SHOWN], len(rows) > CHANGES_SHOWN


def _shown_context(
    requirement: SignoffRequirement, user: Any, shown: Shown | None, changed_since: Shown | None
) -> dict[str, Any]:
    """The version of the release the form carries (signed token, fingerprint, time) and, once
    a signing was refused because the release changed, what changed since the version read."""
    if shown is None:
        return {}
    context: dict[str, Any] = {
        "shown_token": shown_token(shown, requirement_id=requirement.pk, user_id=user.pk),
        "shown_sha256": shown.sha256,
        "shown_at": utc_display(shown.at),
    }
    if changed_since is not None:
        rows, more = _change_rows(requirement.release, changed_since.at)
        context["changed"] = {"since": utc_display(changed_since.at), "rows": rows, "more": more}
    return context


def _sign_page(
    model_admin: ModelAdmin,
    request: HttpRequest,
    requirement: SignoffRequirement,
    *,
    form: SignForm | None,
    refusals: list[str],
    status: int = 200,
    shown: Shown | None = None,
    changed_since: Shown | None = None,
) -> TemplateResponse:
    release = requirement.release
    if requirement.final_decision:
        gate: dict[str, Any] = {"go_refusals": go_refusals(release)}
    else:
        gate = {"open_criteria": [r for r in criteria_evaluate(release) if r.blocks_go]}
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Sign as {requirement.role} — {release}",
        "opts": model_admin.opts,
        "original": requirement,
        "requirement": requirement,
        "release": release,
        "summary": release_full_summary(release),
        "failing": Item.objects.filter(release=release).failing().select_related("section"),
        **gate,
        "attestations": requirement.attestations.all(),
        **_changes_context(requirement),
        **_shown_context(requirement, request.user, shown, changed_since),
        "signatures": _signature_history(requirement, request.user),
        "form": form,
        "refusals": refusals,
        "release_url": reverse("admin:checklist_release_change", args=[release.pk]),
    }
    return TemplateResponse(request, SIGN_TEMPLATE, context, status=status)


def requirement_sign_view(
    model_admin: ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """Show a requirement to anyone who may see its release; let its assignee sign it with
    their password through ``signature_give``. Anyone else who posts gets 403 and the refusal,
    and nothing is written. The form carries the version of the release the page showed; when
    the release changed before the post, nothing is signed and the page lists what changed."""
    requirement = _visible(model_admin, request, object_id)
    user = request.user
    refusals = signing_preconditions(requirement, user)
    may_sign = not refusals
    ask_user_id = signing_needs_user_id(request, user)
    if request.method != "POST":
        form, shown = None, None
        if may_sign:  # the release's content is fingerprinted once, for a page that signs
            shown = release_shown(requirement.release)
            form = SignForm(requirement=requirement, signer_id=user.pk, ask_user_id=ask_user_id)
        return _sign_page(
            model_admin, request, requirement, form=form, refusals=refusals, shown=shown
        )
    if requirement.assignee_id != user.pk:
        audit_denied(
            request,
            reason=f"Not the assignee of the role {requirement.role}: nothing was signed.",
            release=requirement.release,
            obj=requirement,
        )
        return _sign_page(
            model_admin, request, requirement, form=None, refusals=refusals, status=403
        )
    if not may_sign:
        return _sign_page(model_admin, request, requirement, form=None, refusals=refusals)
    # Only the fields of the form are read: nothing else posted reaches the service.
    form = SignForm(
        request.POST, requirement=requirement, signer_id=user.pk, ask_user_id=ask_user_id
    )
    valid = form.is_valid()  # valid: the post names a version the portal issued (form.clean)
    shown, changed_since = form.shown_version, None
    if valid and shown is not None:
        try:
            signature = signature_give(
                requirement=requirement,
                user=user,
                username=form.cleaned_data.get("username", ""),
                password=form.cleaned_data["password"],
                meaning=form.cleaned_data["meaning"],
                comment=form.cleaned_data["comment"],
                request=request,
                shown_sha256=shown.sha256,
            )
        except ReleaseChanged as error:
            # The page now shows the release as the refusal found it, and what changed since
            # the version the signer had read.
            shown, changed_since = error.current, shown
            release_shown_forget(requirement.release)  # a cached fingerprint may be wrong
            form.add_error(None, error.message)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            meaning = signature.get_meaning_display()
            model_admin.log_change(request, requirement, f"Signed: {meaning}.")
            model_admin.message_user(
                request,
                f"Signed as {signature.printed_role}: {meaning} by {signature.printed_name} "
                f"at {utc_display(signature.signed_at)}.",
                messages.SUCCESS,
            )
            release_url = reverse("admin:checklist_release_change", args=[signature.release_id])
            return HttpResponseRedirect(release_url)
    # Any other error keeps the version the signer read; only a post naming none (or a
    # version the portal did not issue) gets the release as it is now.
    shown = shown or release_shown(requirement.release)
    return _sign_page(
        model_admin,
        request,
        requirement,
        form=form,
        refusals=[],
        shown=shown,
        changed_since=changed_since,
    )


# ---------------------------------------------------------------- the revoke page
def signature_revoke_view(
    model_admin: ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The signer withdraws their signature, with a reason, through ``signature_revoke``;
    anyone else who may see it gets 403 and the refusal."""
    signature = _visible(model_admin, request, object_id)
    is_signer = signature.signer_id == request.user.pk
    form = RevokeForm(request.POST or None) if is_signer else None
    if is_signer and request.method == "POST" and form.is_valid():
        try:
            signature_revoke(
                signature=signature, by=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            model_admin.log_change(request, signature, "Revoked.")
            model_admin.message_user(
                request,
                f"Your signature as {signature.printed_role} is revoked; it stays on record.",
                messages.SUCCESS,
            )
            change = reverse("admin:signoffs_signature_change", args=[signature.pk])
            return HttpResponseRedirect(change)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Revoke a signature — {signature.printed_role}",
        "opts": model_admin.opts,
        "original": signature,
        "signature": signature,
        "badge": signature_state_badge(signature),
        "signed_at": utc_display(signature.signed_at),
        "form": form,
        "revoked": signature.state == SignatureState.REVOKED,
        "refusals": []
        if is_signer
        else revocation_refusals(signature=signature, user=request.user, reason=None),
    }
    if not is_signer and request.method == "POST":
        audit_denied(
            request,
            reason="Only the signer revokes a signature: nothing was revoked.",
            release=signature.release,
            obj=signature,
        )
    return TemplateResponse(request, REVOKE_TEMPLATE, context, status=200 if is_signer else 403)
