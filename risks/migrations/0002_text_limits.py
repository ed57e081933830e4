"""Text limits (issue #14.13): state only, see checklist 0006_text_limits."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("risks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="actionitem",
                    name="action",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="actionitem",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        help_text="Extra columns of the table, kept as text.",
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalactionitem",
                    name="action",
                    field=models.TextField(
                        max_length=2000,
                        validators=[django.core.validators.MaxLengthValidator(2000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalactionitem",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        help_text="Extra columns of the table, kept as text.",
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalrisk",
                    name="mitigation",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalrisk",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        help_text="Extra columns of the register, kept as text.",
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="historicalrisk",
                    name="title",
                    field=models.TextField(
                        max_length=1000,
                        validators=[django.core.validators.MaxLengthValidator(1000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="risk",
                    name="mitigation",
                    field=models.TextField(
                        blank=True,
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="risk",
                    name="note",
                    field=models.TextField(
                        blank=True,
                        help_text="Extra columns of the register, kept as text.",
                        max_length=4000,
                        validators=[django.core.validators.MaxLengthValidator(4000)],
                    ),
                ),
                migrations.AlterField(
                    model_name="risk",
                    name="title",
                    field=models.TextField(
                        max_length=1000,
                        validators=[django.core.validators.MaxLengthValidator(1000)],
                    ),
                ),
            ],
        ),
    ]
