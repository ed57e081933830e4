"""Import a Markdown checklist as one release: checklist, risks, action items, sign-off
requirements and GO/NO-GO criteria, all or nothing, every row with its history.

Cross-app orchestration lives here because signoffs is the top of the dependency chain
(checklist ← risks ← signoffs); the pure parser is ``checklist.importers.parse_checklist``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.db.models import Model, ProtectedError, RestrictedError
from django.db.models.deletion import Collector

from checklist.chain import chain_mark
from checklist.importers import (
    ChecklistImportError,
    ParsedChecklist,
    ParsedSignoff,
    parse_checklist,
)
from checklist.models import Item, Release, Section
from checklist.permissions import require_manage
from risks.models import ActionItem, Risk

from .choices import CriterionKind, Tier
from .freeze import release_change_refusals
from .invalidation import material_change
from .models import Attestation, Criterion, SignoffRequirement

_RELEASE_FIELDS = (
    "project",
    "name",
    "sprint",
    "document_version",
    "go_no_go_label",
    "go_no_go_date",
    "owner_label",
    "approvers_label",
    "review_frequency",
    "next_review",
)
_FK_FIELDS = ["release", "section", "parent", "owner", "requirement", "assignee"]
# Told after each chunk of rows written: (rows written, rows to write). Called inside the
# import's transaction, so it must not write to the database (signoffs.import_jobs uses a file).
Progress = Callable[[int, int], None]
WRITE_CHUNK = 1_000


def rows_to_write(parsed: ParsedChecklist) -> int:
    """The rows an import of ``parsed`` writes: the release, sections, items, sign-off roles,
    attestations, criteria, risks and action items."""
    return (
        1
        + sum(1 for _ in parsed.iter_sections())
        + sum(1 for _ in parsed.iter_items())
        + sum(1 + len(s.attestations) for s in parsed.signoffs)
        + len(parsed.criteria)
        + len(parsed.risks)
        + len(parsed.action_items)
    )


def _field_problem(obj: Model, name: str, errors: list[ValidationError]) -> str:
    """``item text: at most 2,000 characters (it has 10,000)``: the row and field, then what
    is wrong (a value over its limit in those words, any other refusal as Django says it)."""
    field = obj._meta.get_field(name)
    messages = []
    for error in errors:
        params = error.params or {}
        if error.code == "max_length" and "limit_value" in params:
            messages.append(
                f"at most {params['limit_value']:,} characters (it has {params['show_value']:,})"
            )
        else:
            messages.extend(error.messages)
    return f"{obj._meta.verbose_name} {field.verbose_name}: {' '.join(messages)}"


class _Writer:
    """Validates and bulk-creates rows with history, naming the source line of a bad value."""

    def __init__(
        self,
        parsed: ParsedChecklist,
        user: AbstractBaseUser | None,
        progress: Progress | None = None,
    ) -> None:
        self.parsed = parsed
        self.user = user
        self.reason = f"Imported from {parsed.source_name}"
        self.progress = progress
        self.written = 0
        self.total = rows_to_write(parsed) if progress is not None else 0

    def advance(self, rows: int) -> None:
        self.written += rows
        if self.progress is not None:
            self.progress(self.written, self.total)

    def fail(self, problem: str, line: int | None = None) -> ChecklistImportError:
        return ChecklistImportError(problem, source_name=self.parsed.source_name, line=line)

    def check(self, obj: Model, line: int | None) -> None:
        # Field validation only: foreign keys are the rows just written (validating them would
        # cost a query each), and uniqueness was checked by the parser.
        try:
            obj.clean_fields(exclude=_FK_FIELDS)
        except ValidationError as error:
            problems = "; ".join(
                _field_problem(obj, name, errors) for name, errors in error.error_dict.items()
            )
            raise self.fail(problems, line) from None

    def create(self, model: type[Model], rows: list[tuple[Model, int | None]]) -> list[Model]:
        for obj, line in rows:
            self.check(obj, line)
        objs = [obj for obj, _ in rows]
        for start in range(0, len(objs), WRITE_CHUNK):
            chunk = objs[start : start + WRITE_CHUNK]
            # Rows and their history in two bulk inserts; a bulk write sends no post_save, so the
            # history rows are marked for the audit chain by their keys.
            model._default_manager.bulk_create(chunk)
            history = model.history.bulk_history_create(
                chunk, default_user=self.user, default_change_reason=self.reason
            )
            keys = [row.pk for row in history]
            if None in keys:
                raise RuntimeError(f"{model._meta.label}: the database returned no history keys")
            chain_mark(model.history.model, keys)
            self.advance(len(chunk))
        return objs

    def save(self, obj: Model, line: int | None = None) -> None:
        self.check(obj, line)
        obj._change_reason = self.reason
        obj._history_user = self.user
        obj.save()
        self.advance(1)

    def delete(self, objs: list[Model]) -> None:
        """Delete rows of one model as Model.delete() does (one Collector, so cascades and
        ``post_delete`` run per row): each row leaves its own history entry with this import's
        reason and user."""
        if not objs:
            return
        for obj in objs:
            obj._change_reason = self.reason
            obj._history_user = self.user
        collector = Collector(using=router.db_for_write(type(objs[0])))
        try:
            collector.collect(objs)
        except (ProtectedError, RestrictedError) as error:
            blockers = sorted({str(o) for o in error.args[1]})[:3]
            raise self.fail(
                f"cannot replace release {self.parsed.release.version}: "
                f"{objs[0]._meta.verbose_name_plural} are referenced by {', '.join(blockers)}"
            ) from None
        collector.delete()


def _clear(
    writer: _Writer, release: Release, keep_roles: set[str]
) -> dict[str, SignoffRequirement]:
    """Delete the release's content (history records each deletion); sign-off requirements
    whose role is in the new checklist are kept, with their assignee and signatures, and
    returned by lower-cased role."""
    requirements = list(SignoffRequirement.objects.filter(release=release))
    kept = {r.role.lower(): r for r in requirements if r.role.lower() in keep_roles}
    for requirement in requirements:  # checked before anything is deleted
        if requirement.role.lower() not in kept and requirement.signatures.exists():
            raise writer.fail(
                f"cannot replace release {release.version}: the role '{requirement.role}' has "
                "signatures and is not in the new checklist; keep its sign-off block"
            )
    writer.delete(list(Attestation.objects.filter(requirement__release=release)))
    writer.delete([r for r in requirements if r.role.lower() not in keep_roles])
    for model in (Criterion, Risk, ActionItem, Item, Section):
        writer.delete(list(model.objects.filter(release=release)))
    return kept


def _release(
    writer: _Writer, replace: bool, stack: ExitStack
) -> tuple[Release, dict[str, SignoffRequirement]]:
    parsed = writer.parsed.release
    release = Release.objects.select_for_update().filter(version=parsed.version).first()
    if release is not None and not replace:
        raise writer.fail(
            f"release {parsed.version} already exists; import with --replace to replace its "
            "checklist",
            parsed.line,
        )
    kept: dict[str, SignoffRequirement] = {}
    if release is None:
        release = Release(version=parsed.version)
    else:
        require_manage(writer.user, release, action="Replace the checklist")
        if problems := release_change_refusals(release=release):  # frozen: refuse up front
            raise writer.fail(f"cannot replace the checklist: {problems[0]}", parsed.line)
        stack.enter_context(
            material_change(
                release_id=release.pk,
                reason=f"Checklist replaced from {writer.parsed.source_name}",
                actor=writer.user,
            )
        )
        kept = _clear(writer, release, {s.role.lower() for s in writer.parsed.signoffs})
    for name in _RELEASE_FIELDS:
        setattr(release, name, getattr(parsed, name))
    if parsed.review_cadence:
        release.review_cadence = parsed.review_cadence
    release.source_name = writer.parsed.source_name[:255]
    try:
        writer.save(release, parsed.line)
    except IntegrityError:  # another import created the version since we looked
        raise writer.fail(f"release {parsed.version} already exists", parsed.line) from None
    return release, kept


def _sections(writer: _Writer, release: Release) -> dict[int, Section]:
    """Sections level by level (a parent is written before its children); keyed by id() of
    the parsed section."""
    by_parsed: dict[int, Section] = {}
    level = [(s, None) for s in writer.parsed.sections]
    order = {id(s): n for n, s in enumerate(writer.parsed.iter_sections())}
    while level:
        rows = [
            (
                Section(
                    release=release,
                    parent=parent,
                    number=s.number,
                    title=s.title,
                    category=s.category,
                    order=order[id(s)],
                ),
                s.line,
            )
            for s, parent in level
        ]
        for (section, _), (parsed, _) in zip(rows, level, strict=True):
            by_parsed[id(parsed)] = section
        writer.create(Section, rows)
        level = [(child, by_parsed[id(s)]) for s, _ in level for child in s.children]
    return by_parsed


def _items(writer: _Writer, release: Release, sections: dict[int, Section]) -> int:
    """Items level by level, in document order; pass/fail computed as Item.save would."""
    by_depth: dict[int, list] = defaultdict(list)
    for order, (section, parent, item, depth) in enumerate(writer.parsed.iter_items()):
        by_depth[depth].append((order, section, parent, item))
    written: dict[int, Item] = {}
    for depth in sorted(by_depth):
        rows = []
        for order, section, parent, parsed in by_depth[depth]:
            item = Item(
                release=release,
                section=sections[id(section)],
                parent=written[id(parent)] if parent is not None else None,
                order=order,
                kind=parsed.kind,
                text=parsed.text,
                key=parsed.key,
                points=parsed.points,
                status=parsed.status,
                checked=parsed.checked,
                target_op=parsed.target_op,
                target_value=parsed.target_value,
                target_unit=parsed.target_unit,
                actual_label=parsed.actual_label,
                actual_value=parsed.actual_value,
                actual_text=parsed.actual_text,
                actual_unit=parsed.actual_unit,
                note=parsed.note,
                source_line=parsed.line,
            )
            item.target_met = item.compute_target_met()
            written[id(parsed)] = item
            rows.append((item, parsed.line))
        writer.create(Item, rows)
    return len(written)


def _signoffs(writer: _Writer, release: Release, kept: dict[str, SignoffRequirement]) -> None:
    requirements: list[tuple[SignoffRequirement, ParsedSignoff]] = []
    new_rows = []
    # A kept requirement that loses the final decision is saved first, so that at no moment
    # two requirements of the release hold it.
    parsed_by_role = {s.role.lower(): s for s in writer.parsed.signoffs}
    for role, requirement in sorted(
        kept.items(), key=lambda kv: parsed_by_role[kv[0]].final_decision
    ):
        parsed = parsed_by_role[role]
        requirement.role, requirement.tier = parsed.role, Tier(parsed.tier)
        requirement.order = writer.parsed.signoffs.index(parsed)
        requirement.final_decision = parsed.final_decision
        writer.save(requirement, parsed.line)
    for order, parsed in enumerate(writer.parsed.signoffs):
        requirement = kept.get(parsed.role.lower())
        if requirement is None:
            requirement = SignoffRequirement(
                release=release,
                role=parsed.role,
                tier=Tier(parsed.tier),
                order=order,
                final_decision=parsed.final_decision,
            )
            new_rows.append((requirement, parsed.line))
        requirements.append((requirement, parsed))
    writer.create(SignoffRequirement, new_rows)
    attestations = [
        (Attestation(requirement=requirement, text=a.text, order=n), a.line)
        for requirement, parsed in requirements
        for n, a in enumerate(parsed.attestations)
    ]
    writer.create(Attestation, attestations)


def _rest(writer: _Writer, release: Release) -> None:
    parsed = writer.parsed
    writer.create(
        Criterion,
        [
            (
                Criterion(
                    release=release,
                    kind=CriterionKind(c.kind),
                    group=c.group,
                    text=c.text,
                    order=n,
                    manual_verdict=True if c.checked else None,
                ),
                c.line,
            )
            for n, c in enumerate(parsed.criteria)
        ],
    )
    writer.create(
        Risk,
        [
            (
                Risk(
                    release=release,
                    key=r.key,
                    title=r.title,
                    impact=r.impact,
                    probability=r.probability,
                    mitigation=r.mitigation,
                    owner_label=r.owner_label,
                    status=r.status,
                    note=r.note,
                    order=n,
                ),
                r.line,
            )
            for n, r in enumerate(parsed.risks)
        ],
    )
    writer.create(
        ActionItem,
        [
            (
                ActionItem(
                    release=release,
                    key=a.key,
                    action=a.action,
                    owner_label=a.owner_label,
                    due_text=a.due_text,
                    due_date=a.due_date,
                    status=a.status,
                    note=a.note,
                    order=n,
                ),
                a.line,
            )
            for n, a in enumerate(parsed.action_items)
        ],
    )


@transaction.atomic
def release_import_parsed(
    *,
    parsed: ParsedChecklist,
    replace: bool = False,
    user: AbstractBaseUser | None = None,
    progress: Progress | None = None,
) -> Release:
    """Write a parsed checklist as one release (see ``release_import``); ``progress`` is told
    the rows written so far after each chunk."""
    writer = _Writer(parsed, user, progress)
    with ExitStack() as stack:
        release, kept = _release(writer, replace, stack)
        sections = _sections(writer, release)
        items = _items(writer, release, sections)
        _signoffs(writer, release, kept)
        _rest(writer, release)
    imported = (
        items
        + sum(1 + len(s.attestations) + (s.decision_line is not None) for s in parsed.signoffs)
        + len(parsed.criteria)
    )
    if imported != parsed.checkbox_count:  # the parser reconciles; this guards the writer
        raise writer.fail(
            f"the file has {parsed.checkbox_count} checkboxes but {imported} were written"
        )
    return release


@transaction.atomic
def release_import(
    *,
    text: str | bytes,
    source_name: str,
    replace: bool = False,
    user: AbstractBaseUser | None = None,
    progress: Progress | None = None,
) -> Release:
    """Import one Markdown checklist as a release, all or nothing.

    The rule, as an auditor reads it: every row written (release, sections, items, risks,
    action items, sign-off requirements and their attestations, GO/NO-GO criteria) carries a
    history entry "Imported from <source_name>" by ``user``. A version that already exists is
    refused unless ``replace``; replacing keeps the release row (same id, owner, status and
    members), updates its fields, deletes its old content so that every deleted row has its own
    history entry (never a bulk delete without history), and writes the new content. A sign-off
    requirement whose role is still in the checklist is kept (with its assignee and signatures)
    and updated; one whose role is gone is deleted, which is refused while signatures hang off
    it. Bad input raises ChecklistImportError naming the file and line, and nothing is written;
    a file past the bounds of ``ImportLimits`` (CHECKLIST_IMPORT_MAX_ITEMS, …) is refused at its
    first line past one, before the rest is parsed. Only a manager of the release may replace it
    (``user`` None: the system, e.g. the command without ``--user``); anyone else gets
    PermissionDenied. ``progress`` is told the rows written after each chunk (see ``Progress``).
    """
    parsed = parse_checklist(text, source_name=source_name)
    return release_import_parsed(parsed=parsed, replace=replace, user=user, progress=progress)
