from django.db import models


class Level(models.TextChoices):
    """Impact and probability of a risk, as the register writes them."""

    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"


LEVEL_WEIGHT = {Level.LOW: 1, Level.MEDIUM: 2, Level.HIGH: 3}
