"""Template tags for the admin index: the releases the signed-in user may see, with readiness
(% complete), the gate's verdict and a link to each dashboard."""

from __future__ import annotations

from typing import Any

from django import template

from checklist.permissions import visible_releases
from signoffs.charts import progress_bar
from signoffs.dashboard import ReadinessOverview, releases_readiness

register = template.Library()

SHOWN = 10


@register.simple_tag(takes_context=True)
def releases_overview(context: dict[str, Any]) -> ReadinessOverview | None:
    """The newest releases granted to the user (at most ``SHOWN``), each with its readiness;
    None for a user with no release."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    return releases_readiness(visible_releases(request.user), limit=SHOWN)


@register.simple_tag
def readiness_bar(percent: int, label: str):
    return progress_bar(percent, label=label)
