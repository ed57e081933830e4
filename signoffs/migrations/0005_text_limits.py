"""Text limits (issue #14.13): state only, see checklist 0006_text_limits."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("signoffs", "0004_decisionrecord_failure"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="attestation",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="criterion",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalattestation",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalcriterion",
                    name="text",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalsignature",
                    name="comment",
                    field=models.TextField(
                        blank=True,
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="signature",
                    name="comment",
                    field=models.TextField(
                        blank=True,
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="signatureevent",
                    name="reason",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
            ],
        ),
    ]
