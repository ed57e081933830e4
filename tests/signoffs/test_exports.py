import hashlib
import json
from decimal import Decimal

import pytest

from signoffs.exports import canonical_json, release_snapshot, snapshot_sha256
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def release():
    release = ReleaseFactory(name="Release 2", version="v0.3.0", project="dCMMS")
    top = SectionFactory(release=release, number="2", title="Performance", category="Perf")
    sub = SectionFactory(release=release, number="2.1", title="API", parent=top)
    group = ItemFactory(section=sub, kind="group", text="Backend API Response Times")
    ItemFactory(
        section=sub,
        parent=group,
        failing=True,
        text="p95 latency",
        note="(Target)",
        owner=UserFactory(username="qa"),
    )
    ItemFactory(section=sub, parent=group, text="Plain check", status="complete")
    RiskFactory(release=release, key="R-001", impact="HIGH", probability="MEDIUM")
    ActionItemFactory(release=release, key="A-001")
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    AttestationFactory(requirement=requirement, text="All tests passing")
    CriterionFactory(release=release, kind="no_go", group="Blockers", text="Critical bugs open")
    return release


def test_snapshot_has_the_documented_shape(release):
    data = release_snapshot(release)
    assert data["release"]["version"] == "v0.3.0"
    assert [s["number"] for s in data["sections"]] == ["2", "2.1"]
    assert data["sections"][1]["parent"] == "2"
    group = data["sections"][1]["items"][0]
    assert group["kind"] == "group"
    metric = group["children"][0]
    assert metric["target"] == {"op": "<", "value": 200, "unit": "ms"}
    assert metric["actual"] == {"label": "Actual", "value": 350, "text": "", "unit": "ms"}
    assert metric["meets_target"] is False
    assert metric["owner_user"] == "qa"
    assert group["children"][1]["target"] is None and group["children"][1]["actual"] is None
    assert data["risks"][0]["score"] == 6
    assert data["action_items"][0]["overdue"] is False
    assert data["signoffs"] == [
        {
            "role": "QA Lead",
            "tier": "technical",
            "order": data["signoffs"][0]["order"],
            "attestations": ["All tests passing"],
            "final_decision": False,
        }
    ]
    assert data["criteria"][0]["kind"] == "no_go"
    categories = [r["category"] for r in data["summary"]["rows"]]
    assert categories == ["Perf", "Stakeholder Sign-offs"]
    assert data["summary"]["total"]["total"] == 3


def test_snapshot_decimals_are_json_numbers():
    item = ItemFactory(metric=True, target_value=Decimal("0.01"), target_unit="%")
    data = release_snapshot(item.release)
    assert data["sections"][0]["items"][0]["target"]["value"] == 0.01


def test_canonical_json_is_stable_and_sorted(release):
    first = canonical_json(release_snapshot(release))
    second = canonical_json(release_snapshot(release))
    assert first == second
    assert first.startswith('{"action_items":')
    assert ": " not in first.split('"text"')[0]
    assert snapshot_sha256(json.loads(first)) == hashlib.sha256(first.encode()).hexdigest()


def test_snapshot_query_count_does_not_grow_with_items(release, django_assert_max_num_queries):
    section = release.sections.get(number="2.1")
    with django_assert_max_num_queries(12) as small:
        release_snapshot(release)
    ItemFactory.create_batch(200, section=section)
    with django_assert_max_num_queries(len(small.captured_queries)):
        release_snapshot(release)


def test_signoff_summary_row_counts_signature_states(review):
    from signoffs.services import signature_give
    from signoffs.summary import release_full_summary

    release, roles = review
    for role, meaning in (("QA Lead", "approved"), ("Security Officer", "rejected")):
        signature_give(
            requirement=roles[role],
            user=roles[role].assignee,
            username=roles[role].assignee.username,
            password="correct horse battery staple",
            meaning=meaning,
            comment="why",
        )
    row = release_full_summary(release).rows[-1]
    assert row.category == "Stakeholder Sign-offs"
    assert (row.total, row.complete, row.counts["blocked"], row.counts["not_started"]) == (
        3,
        1,
        1,
        1,
    )
    item = release.items.first()
    item.text = "changed"
    item.save()
    row = release_full_summary(release).rows[-1]
    assert (row.complete, row.counts["at_risk"], row.counts["not_started"]) == (0, 2, 1)
