import pytest
from django.core.exceptions import ValidationError

from signoffs.gates import criteria_evaluate, go_refusals
from signoffs.services import criterion_set_verdict, signature_give
from tests.factories import CriterionFactory, ItemFactory, RiskFactory

pytestmark = pytest.mark.django_db


def approve(requirement):
    return signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password="correct horse battery staple",
        meaning="approved",
    )


def result_for(release, criterion):
    return next(r for r in criteria_evaluate(release) if r.criterion.pk == criterion.pk)


def test_go_criterion_met_when_linked_items_complete_and_passing(review):
    release, _ = review
    item = ItemFactory(section=release.sections.first(), status="complete")
    criterion = CriterionFactory(release=release, kind="go", text="All tasks complete")
    criterion.items.add(item)
    assert result_for(release, criterion).holds is True
    failing = ItemFactory(section=release.sections.first(), status="complete", failing=True)
    criterion.items.add(failing)
    result = result_for(release, criterion)
    assert result.holds is False
    assert "misses its target (< 200 ms)" in result.why


def test_go_criterion_not_met_when_linked_item_open(review):
    release, _ = review
    criterion = CriterionFactory(release=release, kind="go")
    criterion.items.add(ItemFactory(section=release.sections.first(), text="Audit"))
    result = result_for(release, criterion)
    assert result.holds is False and "“Audit” is not started" in result.why
    assert result.decided_by == ["item Audit"]


def test_no_go_blocker_fires_when_linked_risk_open(review):
    release, _ = review
    risk = RiskFactory(release=release, key="R-004", status="in_progress")
    blocker = CriterionFactory(
        release=release,
        kind="no_go",
        group="Blockers",
        text="Critical security vulnerabilities unresolved",
    )
    blocker.risks.add(risk)
    assert result_for(release, blocker).holds is True
    assert (
        "NO-GO blocker fires: Blockers — Critical security vulnerabilities unresolved "
        "(risk R-004 is open (in progress))"
    ) in go_refusals(release)
    risk.status = "complete"
    risk.save()
    assert result_for(release, blocker).holds is False


def test_criterion_linked_to_signoff_needs_a_valid_approval(review):
    release, roles = review
    criterion = CriterionFactory(release=release, kind="go", text="All technical approvals")
    criterion.requirements.add(roles["QA Lead"])
    assert "no valid approval from QA Lead" in result_for(release, criterion).why
    approve(roles["QA Lead"])
    assert result_for(release, criterion).holds is True


def test_unlinked_criteria_use_the_manual_verdict(review, pm):
    release, _ = review
    go = CriterionFactory(release=release, kind="go", group="Docs", text="User docs complete")
    blocker = CriterionFactory(release=release, kind="no_go", group="Blockers", text="Bugs open")
    reasons = go_refusals(release)
    assert "GO criterion not met: Docs — User docs complete (no verdict yet (nothing linked))" in (
        reasons
    )
    assert "NO-GO blocker not assessed: Blockers — Bugs open" in reasons
    criterion_set_verdict(criterion=go, verdict=True, by=pm)
    criterion_set_verdict(criterion=blocker, verdict=False, by=pm)
    reasons = go_refusals(release)
    assert not any("Docs" in r or "Bugs open" in r for r in reasons)
    assert go.history.first().history_user == pm


def test_manual_verdict_refused_when_something_is_linked(review, pm):
    release, _ = review
    criterion = CriterionFactory(release=release)
    criterion.items.add(ItemFactory(section=release.sections.first()))
    with pytest.raises(ValidationError, match="decided by what is linked"):
        criterion_set_verdict(criterion=criterion, verdict=True, by=pm)


def test_go_refusals_name_missing_rejected_and_stale_signoffs(review):
    release, roles = review
    approve(roles["QA Lead"])
    security = roles["Security Officer"]
    signature_give(
        requirement=security,
        user=security.assignee,
        username=security.assignee.username,
        password="correct horse battery staple",
        meaning="rejected",
        comment="Pen test open",
    )
    item = release.items.first()
    item.text = "changed after signing"
    item.save()
    reasons = go_refusals(release)
    assert "Missing valid sign-off: QA Lead" in reasons
    assert "Missing valid sign-off: Security Officer" in reasons
    assert any(r.startswith("Stale signature: QA Lead") for r in reasons)


def test_go_refusals_empty_when_everything_holds(review):
    release, roles = review
    approve(roles["QA Lead"])
    approve(roles["Security Officer"])
    assert go_refusals(release) == []


def test_criteria_evaluate_query_count_constant(review, django_assert_max_num_queries):
    release, _ = review
    for _ in range(20):
        c = CriterionFactory(release=release)
        c.items.add(ItemFactory(section=release.sections.first()))
    with django_assert_max_num_queries(5):
        criteria_evaluate(release)
