from django.db import models


class Tier(models.TextChoices):
    TECHNICAL = "technical", "Technical"
    OPERATIONS = "operations", "Operations"
    EXECUTIVE = "executive", "Executive"


class CriterionKind(models.TextChoices):
    GO = "go", "GO criterion"
    NO_GO = "no_go", "NO-GO blocker"


class SignatureMeaning(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    GO = "go", "GO"
    DEFER = "defer", "DEFER"


# What each kind of requirement may record; a reason is required for the second of each pair.
ROLE_MEANINGS = (SignatureMeaning.APPROVED, SignatureMeaning.REJECTED)
FINAL_MEANINGS = (SignatureMeaning.GO, SignatureMeaning.DEFER)
MEANINGS_NEEDING_REASON = (SignatureMeaning.REJECTED, SignatureMeaning.DEFER)


class SignatureState(models.TextChoices):
    VALID = "valid", "Valid"
    STALE = "stale", "Stale"
    REVOKED = "revoked", "Revoked"


class MemberRole(models.TextChoices):
    """Access to a release that is not a signing role."""

    PRODUCT_MANAGER = "pm", "Product manager"
    STAKEHOLDER = "stakeholder", "Stakeholder"
    AUDITOR = "auditor", "Auditor"


class RecordState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class DispatchStatus(models.TextChoices):
    CLAIMED = "claimed", "Claimed"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    EMPTY = "empty", "Nothing to send"
