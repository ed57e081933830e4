"""Posting the sign page as a browser does: read the page first, then post with the version of
the release it showed (the signed ``shown`` token, ``signoffs.shown``)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def sign_url(requirement) -> str:
    return reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])


def shown_token(client, requirement) -> str:
    """The token the sign page's form carries now ('' when the page offers no form)."""
    page = client.get(sign_url(requirement))
    context = page.context if page.status_code == 200 else None
    return (context.get("shown_token") if context is not None else None) or ""


def sign_post(client, requirement, data: dict[str, Any]):
    """GET the sign page, then POST ``data`` with the version the page showed."""
    return client.post(sign_url(requirement), {"shown": shown_token(client, requirement), **data})
