from django.db import models


class Tier(models.TextChoices):
    TECHNICAL = "technical", "Technical"
    OPERATIONS = "operations", "Operations"
    EXECUTIVE = "executive", "Executive"


class CriterionKind(models.TextChoices):
    GO = "go", "GO criterion"
    NO_GO = "no_go", "NO-GO blocker"
