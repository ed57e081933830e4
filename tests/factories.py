"""factory_boy factories for every model; traits for the common shapes."""

import hashlib
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from checklist.choices import ItemKind, ItemStatus
from checklist.models import Item, Release, Section
from risks.choices import Level
from risks.models import ActionItem, Risk
from signoffs.choices import CriterionKind, Tier
from signoffs.models import Attestation, Criterion, SignoffRequirement


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    class Params:
        staff = factory.Trait(is_staff=True)
        superuser = factory.Trait(is_staff=True, is_superuser=True)


class ReleaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Release

    project = "dCMMS"
    name = factory.Sequence(lambda n: f"Release {n}")
    version = factory.Sequence(lambda n: f"v0.{n}.0")
    sprint = "Sprint 18"
    document_version = "1.0"


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    release = factory.SubFactory(ReleaseFactory)
    number = factory.Sequence(lambda n: str(n + 1))
    title = factory.Sequence(lambda n: f"Section {n + 1}")
    order = factory.Sequence(lambda n: n)


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    section = factory.SubFactory(SectionFactory)
    release = factory.SelfAttribute("section.release")
    text = factory.Sequence(lambda n: f"Checklist item {n}")
    kind = ItemKind.CHECK
    status = ItemStatus.NOT_STARTED
    order = factory.Sequence(lambda n: n)

    class Params:
        task = factory.Trait(
            kind=ItemKind.TASK,
            key=factory.Sequence(lambda n: f"DCMMS-{n + 100}"),
            points=5,
        )
        metric = factory.Trait(
            kind=ItemKind.METRIC,
            target_op="<",
            target_value=Decimal("200"),
            target_unit="ms",
            actual_label="Actual",
        )
        failing = factory.Trait(
            kind=ItemKind.METRIC,
            target_op="<",
            target_value=Decimal("200"),
            target_unit="ms",
            actual_label="Actual",
            actual_value=Decimal("350"),
            actual_unit="ms",
        )
        complete = factory.Trait(status=ItemStatus.COMPLETE, checked=True)


class RiskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Risk

    release = factory.SubFactory(ReleaseFactory)
    key = factory.Sequence(lambda n: f"R-{n + 1:03d}")
    title = factory.Sequence(lambda n: f"Risk {n}")
    impact = Level.HIGH
    probability = Level.MEDIUM
    mitigation = "Mitigate early"
    owner_label = "CTO"


class ActionItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionItem

    release = factory.SubFactory(ReleaseFactory)
    key = factory.Sequence(lambda n: f"A-{n + 1:03d}")
    action = factory.Sequence(lambda n: f"Action {n}")
    owner_label = "Product Manager"
    due_text = "Day 2"


class SignoffRequirementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignoffRequirement

    release = factory.SubFactory(ReleaseFactory)
    role = factory.Sequence(lambda n: f"Role {n}")
    tier = Tier.TECHNICAL
    order = factory.Sequence(lambda n: n)


class AttestationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attestation

    requirement = factory.SubFactory(SignoffRequirementFactory)
    text = factory.Sequence(lambda n: f"Statement {n}")
    order = factory.Sequence(lambda n: n)


class CriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    release = factory.SubFactory(ReleaseFactory)
    kind = CriterionKind.GO
    group = "Functional Completeness"
    text = factory.Sequence(lambda n: f"Criterion {n}")
    order = factory.Sequence(lambda n: n)


class ImportJobFactory(factory.django.DjangoModelFactory):
    """An upload kept for the worker, queued; ``running`` and ``failed`` traits."""

    class Meta:
        model = "checklist.ImportJob"

    created_by = factory.SubFactory(UserFactory, staff=True)
    source_name = "big.md"
    data = b"# A checklist\n"
    size = factory.LazyAttribute(lambda job: len(job.data))
    sha256 = factory.LazyAttribute(lambda job: hashlib.sha256(job.data).hexdigest())

    class Params:
        running = factory.Trait(state="running", attempts=1)
        failed = factory.Trait(state="failed", data=b"", errors=["big.md:3: broken"])
