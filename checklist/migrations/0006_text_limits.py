"""Text limits (issue #14.13) and, for the release, the version format (#14.12).

A TextField's max_length and any field's validators live in Python only: the columns
stay as they are, so the migration changes the state and writes no SQL (on SQLite an
AlterField would otherwise rebuild every history table)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("checklist", "0005_audit_kinds_access"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="historicalitem",
                    name="evidence_note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalitem",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalitem",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalrelease",
                    name="version",
                    field=models.CharField(
                        db_index=True,
                        max_length=50,
                        validators=[
                            django.core.validators.RegexValidator(
                                "\\Av?[0-9]+(\\.[0-9]+){0,3}(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?\\Z",
                                code="invalid_version",
                                message="Enter a version such as v0.3.0, 2.1 or v2.0.0-rc.1: digits separated by dots, optionally a leading v, a -pre-release and a +build made of letters, digits, dots and hyphens.",
                            )
                        ],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalsection",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="evidence_note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="release",
                    name="version",
                    field=models.CharField(
                        max_length=50,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "\\Av?[0-9]+(\\.[0-9]+){0,3}(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?\\Z",
                                code="invalid_version",
                                message="Enter a version such as v0.3.0, 2.1 or v2.0.0-rc.1: digits separated by dots, optionally a leading v, a -pre-release and a +build made of letters, digits, dots and hyphens.",
                            )
                        ],
                    ),
                ),
                migrations.AlterField(
                    model_name="section",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
            ],
        ),
    ]
