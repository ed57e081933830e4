"""Bad input: every refusal names the file, the line (when there is one) and the problem, and
writes nothing; a failed --replace leaves the old release as it was."""

import pytest

from checklist.importers import ChecklistImportError
from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk
from signoffs.documents import release_import
from signoffs.exports import release_snapshot
from signoffs.models import Attestation, Criterion, Signature, SignoffRequirement

# Body lines start at line 8.
HEADER = "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n## Section 1: Work\n\n### 1.1 Tasks\n\n"
MODELS = (Release, Section, Item, Risk, ActionItem, SignoffRequirement, Attestation, Criterion)
SIGN = "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n## Section 8: Sign\n\n### 8.1 {tier}\n\n"
SIGNOFF = "### 8.1 {title}\n\n- [ ] **{role} Approval**\n  - [ ] Attested\n  - Signature: ___\n"


def _doc(body: str) -> str:
    return HEADER + body


def _assert_nothing_written() -> None:
    for model in MODELS:
        assert model.objects.count() == 0, model
        assert model.history.count() == 0, model


def _refused(data, **kwargs) -> ChecklistImportError:
    with pytest.raises(ChecklistImportError) as caught:
        release_import(text=data, source_name="demo.md", **kwargs)
    return caught.value


CASES = {
    "not_utf8": (HEADER.encode() + b"- [ ] caf\xe9\n", 8, "is not UTF-8 text (byte 0xe9"),
    "binary_nul": (HEADER.encode() + b"- [ ] a\n\x00\x01\x02", 9, "contains NUL bytes"),
    "control_character": (_doc("- [ ] a\x01\n"), 8, "contains the control character U+0001"),
    "too_deep": (
        _doc("".join(f"{'  ' * n}- [ ] level {n + 1}\n" for n in range(7))),
        14,
        "this list item is nested 7 levels deep; the limit is 6 (CHECKLIST_IMPORT_MAX_DEPTH)",
    ),
    "task_key_twice": (
        _doc("- [ ] **KEY-1: One** (1 point) - Complete\n- [ ] **KEY-1: Again** (2 points)\n"),
        9,
        "task KEY-1 appears twice (first at line 8)",
    ),
    "missing_release_line": (
        "**Project:** Demo\n\n## Section 1: Work\n\n- [ ] a\n",
        None,
        "no '**Release:** <name> (<version>)' line",
    ),
    "release_without_version": (
        "**Project:** Demo\n**Release:** Release Two\n\n## Section 1: W\n\n- [ ] a\n",
        2,
        "the Release line names no version: 'Release Two'",
    ),
    "missing_project_line": (
        "**Release:** Demo (v9.9.9)\n\n## Section 1: W\n\n- [ ] a\n",
        None,
        "no '**Project:** <name>' line",
    ),
    "checkbox_not_placed": (
        _doc("- [ ] a\n\n## Document Control\n\n- Version history\n  - [ ] stray\n"),
        13,
        "could not place this checkbox: the file has 2 checkboxes and 1 were imported",
    ),
    "checkbox_before_sections": (
        "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n- [ ] loose\n",
        4,
        "a checkbox before the first section",
    ),
    "section_twice": (_doc("- [ ] a\n\n## Section 1: Again\n"), 10, "section 1 appears twice"),
    "subsection_misplaced": (
        _doc("- [ ] a\n\n### 2.1 Elsewhere\n"),
        10,
        "subsection 2.1 is not under section 2 (it is under Section 1)",
    ),
    "empty_item": (_doc("- [ ] a\n- [ ]\n"), 9, "this checklist item has no text"),
    "signoff_without_tier": (
        _doc("- [ ] a\n\n## Section 8: Sign\n\n" + SIGNOFF.format(title="Approvals", role="CTO")),
        14,
        "cannot tell the tier of the sign-off block 'CTO': its section '8.1 Approvals' names none",
    ),
    "signoff_role_twice": (
        "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n## Section 8: Sign\n\n"
        + SIGNOFF.format(title="Technical", role="CTO")
        + "\n- [ ] **CTO Approval**\n  - Signature: ___\n",
        12,
        "the sign-off role 'CTO' appears twice (first at line 8)",
    ),
    "two_final_decisions": (
        SIGN.format(tier="Executive")
        + "- [ ] **CEO Approval (Final Go/No-Go)**\n  - Signature: ___\n"
        "- [ ] **COO Approval**\n  - [ ] **DECISION: [ ] GO  [ ] DEFER**\n  - Signature: ___\n",
        10,
        "'COO' is a second final Go/No-Go decision (the first is 'CEO' at line 8)",
    ),
    "signature_with_checkbox": (
        SIGN.format(tier="Technical")
        + "- [ ] **QA Lead Approval**\n  - Signature: ___\n  - [ ] Signature: ___\n",
        10,
        "write the Signature line without a checkbox",
    ),
    "attestation_with_children": (
        SIGN.format(tier="Technical")
        + "- [ ] **QA Lead Approval**\n  - [ ] Tests pass\n    - [ ] unit\n  - Signature: ___\n",
        10,
        "an attestation of a sign-off block cannot have sub-items",
    ),
    "nested_criterion": (
        _doc("- [ ] a\n\n### GO Criteria\n\n✅ **Quality**\n- [ ] Tests pass\n  - [ ] unit\n"),
        14,
        "a GO/NO-GO criterion cannot have sub-items",
    ),
    "risk_key_twice": (
        _doc(
            "- [ ] a\n\n| ID | Risk | Impact | Probability |\n|---|---|---|---|\n"
            "| R-1 | One | HIGH | LOW |\n| R-1 | Two | LOW | LOW |\n"
        ),
        13,
        "risk R-1 appears twice (first at line 12)",
    ),
    "risk_bad_level": (
        _doc(
            "- [ ] a\n\n| ID | Risk | Impact | Probability |\n|---|---|---|---|\n| R-1 | X | "
            "Severe | LOW |\n"
        ),
        12,
        "risk R-1: impact 'Severe' is not HIGH, MEDIUM or LOW",
    ),
    "action_unknown_status": (
        _doc("- [ ] a\n\n| ID | Action | Status |\n|---|---|---|\n| A-1 | Do it | Soonish |\n"),
        12,
        "action item A-1: status 'Soonish' is not a legend status",
    ),
    "table_row_too_wide": (
        _doc("- [ ] a\n\n| ID | Action |\n|---|---|\n| A-1 | Do it | extra |\n"),
        12,
        "this table row has 3 cells; its header has 2",
    ),
    "value_too_long": (  # caught by field validation while writing: rolled back
        _doc("- [ ] a\n\n### 1.2 " + "T" * 301 + "\n"),
        10,
        "section title: at most 300 characters (it has 301)",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_release_import_refuses_and_writes_nothing_when_input_is_bad(case):
    data, line, problem = CASES[case]
    error = _refused(data)
    assert error.line == line
    assert error.problem.startswith(problem), error.problem
    where = f"demo.md:{line}" if line else "demo.md"
    assert str(error).startswith(f"{where}: {problem}")
    _assert_nothing_written()


@pytest.mark.django_db
def test_release_import_refuses_a_file_over_the_limit_when_larger_than_2_mb():
    error = _refused(b"x" * (2 * 1024 * 1024 + 1))
    assert str(error) == (
        "demo.md: the file is 2,097,153 bytes; the limit is 2,097,152 bytes "
        "(CHECKLIST_IMPORT_MAX_BYTES)"
    )
    _assert_nothing_written()


@pytest.mark.django_db
def test_release_import_follows_the_settings_when_the_limits_are_lowered(settings):
    settings.CHECKLIST_IMPORT_MAX_BYTES = 100
    assert "the limit is 100 bytes" in str(_refused(_doc("- [ ] a long enough item\n")))
    settings.CHECKLIST_IMPORT_MAX_BYTES = 10_000
    settings.CHECKLIST_IMPORT_MAX_DEPTH = 2
    error = _refused(_doc("- [ ] a\n  - [ ] b\n    - [ ] c\n"))
    assert (error.line, error.problem) == (
        10,
        "this list item is nested 3 levels deep; the limit is 2 (CHECKLIST_IMPORT_MAX_DEPTH)",
    )
    _assert_nothing_written()


@pytest.mark.django_db
def test_release_import_refuses_an_existing_version_when_replace_is_not_asked():
    release_import(text=_doc("- [ ] a\n"), source_name="first.md")
    before = {model: model.objects.count() for model in MODELS}
    error = _refused(_doc("- [ ] b\n"))
    assert str(error) == (
        "demo.md:2: release v9.9.9 already exists; import with --replace to replace its checklist"
    )
    assert {model: model.objects.count() for model in MODELS} == before
    assert Item.objects.get().text == "a"


# ---------------------------------------------------------------- failed --replace


GOOD = (
    _doc("- [ ] **KEY-1: One** (1 point) - Complete\n  - [x] done\n")
    + "\n## Section 8: Sign-offs\n\n### 8.1 Technical Sign-offs\n\n"
    "- [ ] **QA Lead Approval**\n  - [ ] Tests pass\n  - Signature: ___ Date: ___\n\n"
    "## Section 9: Risks\n\n| ID | Risk | Impact | Probability |\n|---|---|---|---|\n"
    "| R-1 | Late | HIGH | LOW |\n"
)


def _history_counts() -> dict:
    return {model: model.history.count() for model in MODELS}


@pytest.fixture
def imported(db):
    release = release_import(text=GOOD, source_name="good.md")
    return release, release_snapshot(release), _history_counts()


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (_doc("- [ ] **KEY-1: A**\n- [ ] **KEY-1: B**\n"), "task KEY-1 appears twice"),
        (_doc("- [ ] a\n\n### 1.2 " + "T" * 301 + "\n"), "section title: at most 300"),
        (GOOD.replace("Demo (v9.9.9)", "Demo"), "the Release line names no version"),
    ],
)
def test_release_import_leaves_the_old_release_when_replace_fails(imported, bad, problem):
    release, snapshot, history = imported
    error = _refused(bad, replace=True)
    assert problem in str(error)
    assert Release.objects.get().pk == release.pk
    assert release_snapshot(Release.objects.get()) == snapshot
    assert _history_counts() == history


def test_release_import_refuses_to_drop_a_signed_role_when_replacing(imported, django_user_model):
    from django.utils import timezone

    release, _, _ = imported
    signer = django_user_model.objects.create(username="qa")
    Signature.objects.create(
        requirement=SignoffRequirement.objects.get(), release=release, signer=signer,
        printed_name="Q. A.", printed_role="QA Lead", meaning="approved",
        signed_at=timezone.now(), snapshot_sha256="0" * 64,
    )  # fmt: skip
    snapshot, history = release_snapshot(Release.objects.get()), _history_counts()
    without_qa = GOOD.replace("QA Lead Approval", "Release Manager Approval")
    error = _refused(without_qa, replace=True)
    assert str(error) == (
        "demo.md: cannot replace release v9.9.9: the role 'QA Lead' has signatures and is not in "
        "the new checklist; keep its sign-off block"
    )
    assert release_snapshot(Release.objects.get()) == snapshot
    assert _history_counts() == history
