"""The machine-readable record of a release: the JSON export that CI tools and auditors read and
whose canonical form (sorted keys, fixed separators, UTF-8) signatures hash."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk

from .models import Criterion, SignoffRequirement
from .summary import release_full_summary


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    value = Decimal(value).normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def _user(user) -> str | None:
    return user.get_username() if user is not None else None


def _item(item: Item, children: list[dict]) -> dict[str, Any]:
    has_actual = (
        item.actual_label or item.actual_value is not None or item.actual_text or item.actual_unit
    )
    return {
        "text": item.text,
        "kind": item.kind,
        "status": item.status,
        "checked": item.checked,
        "key": item.key,
        "points": item.points,
        "owner": item.owner_label,
        "owner_user": _user(item.owner),
        "due": item.due_date.isoformat() if item.due_date else None,
        "target": (
            {"op": item.target_op, "value": _number(item.target_value), "unit": item.target_unit}
            if item.target_op
            else None
        ),
        "actual": (
            {
                "label": item.actual_label,
                "value": _number(item.actual_value),
                "text": item.actual_text,
                "unit": item.actual_unit,
            }
            if has_actual
            else None
        ),
        "meets_target": item.target_met,
        "evidence": {"link": item.evidence_link, "note": item.evidence_note},
        "note": item.note,
        "children": children,
    }


def _item_trees(release: Release) -> dict[int, list[dict]]:
    """Every item of the release in one query, as a tree per section."""
    items = list(
        Item.objects.filter(release=release).select_related("owner").order_by("order", "pk")
    )
    by_parent: dict[int | None, list[Item]] = defaultdict(list)
    for item in items:
        by_parent[item.parent_id].append(item)

    def build(item: Item) -> dict:
        return _item(item, [build(child) for child in by_parent.get(item.pk, [])])

    trees: dict[int, list[dict]] = defaultdict(list)
    for root in by_parent.get(None, []):
        trees[root.section_id].append(build(root))
    return trees


def release_snapshot(release: Release, *, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The release as a JSON-ready dict; a constant number of queries whatever its size.
    ``content``: its ``release_content``, when the caller already read it."""
    if content is None:
        content = release_content(release)
    return {**content, "summary": release_full_summary(release).as_dict()}


def release_content(release: Release) -> dict[str, Any]:
    """The snapshot without its status summary: what the release says (its row, sections,
    items, risks, action items, sign-off requirements, criteria). The summary is derived from
    these items plus the state of the signatures, which is the record *about* the content; the
    sign page's fingerprint of what a signer was shown hashes this part
    (``signoffs.shown``)."""
    trees = _item_trees(release)
    sections = Section.objects.filter(release=release).select_related("parent").order_by("order")
    requirements = (
        SignoffRequirement.objects.filter(release=release)
        .prefetch_related("attestations")
        .order_by("order", "pk")
    )
    return {
        "release": {
            "project": release.project,
            "name": release.name,
            "version": release.version,
            "sprint": release.sprint,
            "status": release.status,
            "go_no_go_date": release.go_no_go_date.isoformat() if release.go_no_go_date else None,
            "go_no_go_label": release.go_no_go_label,
            "document_version": release.document_version,
            "owner": release.owner_label,
            "owner_user": _user(release.owner),
            "approvers": release.approvers_label,
            "review_frequency": release.review_frequency,
            "review_cadence": release.review_cadence,
            "next_review": release.next_review,
        },
        "sections": [
            {
                "number": s.number,
                "title": s.title,
                "category": s.category,
                "parent": s.parent.number if s.parent else None,
                "note": s.note,
                "items": trees.get(s.pk, []),
            }
            for s in sections
        ],
        "risks": [
            {
                "key": r.key,
                "title": r.title,
                "impact": r.impact,
                "probability": r.probability,
                "mitigation": r.mitigation,
                "owner": r.owner_label,
                "owner_user": _user(r.owner),
                "status": r.status,
                "score": r.score,
                "note": r.note,
            }
            for r in Risk.objects.filter(release=release).select_related("owner")
        ],
        "action_items": [
            {
                "key": a.key,
                "action": a.action,
                "owner": a.owner_label,
                "owner_user": _user(a.owner),
                "due": a.due_text,
                "due_date": a.due_date.isoformat() if a.due_date else None,
                "status": a.status,
                "overdue": a.overdue,
                "note": a.note,
            }
            for a in ActionItem.objects.filter(release=release).select_related("owner")
        ],
        "signoffs": [
            {
                "role": req.role,
                "tier": req.tier,
                "order": req.order,
                "attestations": [a.text for a in req.attestations.all()],
                "final_decision": req.final_decision,
            }
            for req in requirements
        ],
        "criteria": [
            {"kind": c.kind, "group": c.group, "text": c.text, "order": c.order}
            for c in Criterion.objects.filter(release=release).order_by("kind", "order", "pk")
        ],
    }


def canonical_json(data: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no insignificant white space."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def snapshot_sha256(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
