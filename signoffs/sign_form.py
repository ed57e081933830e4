"""The sign page's form: what the signer chooses, and which version of the release they read."""

from __future__ import annotations

import logging
from typing import Any

from django import forms

from checklist.validators import COMMENT

from .choices import SignatureMeaning
from .gates import allowed_meanings
from .models import SignoffRequirement
from .shown import NOT_ISSUED, NOT_SHOWN, Shown, shown_read

logger = logging.getLogger(__name__)


class SignForm(forms.Form):
    """What the signer chooses, and nothing else: name, role, time and the hash of what is
    signed are the server's. ``shown`` carries the version of the release the page showed (a
    token the page issues, ``signoffs.shown``); a post without it, or with one the portal did not
    issue to this signer for this requirement, is refused."""

    meaning = forms.ChoiceField(widget=forms.RadioSelect, label="I record")
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        required=False,
        max_length=COMMENT,  # checklist.validators: the signature's comment takes no more
        label="Comment",
        help_text="Required to reject, or to DEFER.",
    )
    username = forms.CharField(  # the first signing of a session only (§11.200(a)(1))
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
        label="User ID",
        help_text="Your first signing in this session: type your user ID and your password. "
        "Later signings in this session ask for the password only.",
        error_messages={"required": "Type your user ID to sign."},
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password",
        help_text="Re-enter your password: signing is an electronic signature.",
        strip=False,
        error_messages={"required": "Re-enter your password to sign."},
    )
    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(
        self,
        *args: Any,
        requirement: SignoffRequirement,
        signer_id: int,
        ask_user_id: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.requirement_id, self.signer_id = requirement.pk, signer_id
        self.shown_version: Shown | None = None
        self.fields["meaning"].choices = [
            (meaning, SignatureMeaning(meaning).label) for meaning in allowed_meanings(requirement)
        ]
        if not ask_user_id:
            del self.fields["username"]
            self.fields["password"].help_text = (
                "Re-enter your password: signing is an electronic signature. You typed your "
                "user ID at your first signing in this session."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        token = cleaned.get("shown", "")
        if not token:
            self.add_error(None, NOT_SHOWN)
            return cleaned
        self.shown_version = shown_read(
            token, requirement_id=self.requirement_id, user_id=self.signer_id
        )
        if self.shown_version is None:
            logger.warning(
                "Sign page token refused (not issued for requirement %s to user %s)",
                self.requirement_id,
                self.signer_id,
            )
            self.add_error(None, NOT_ISSUED)
        return cleaned
