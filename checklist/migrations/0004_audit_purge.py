import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('checklist', '0003_audit_chain'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditPurge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(default=django.utils.timezone.now, help_text='Server time, UTC.')),
                ('cutoff', models.DateTimeField(help_text='Records whose retention clock started before this.')),
                ('purged', models.JSONField(default=dict, help_text='Per table, the purged primary keys as ranges: {"t": [[1, 9]]}.')),
                ('event', models.ForeignKey(db_constraint=False, help_text='The purge\'s audit event (who ran it, which releases, counts per table).', on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='checklist.auditevent')),
            ],
            options={
                'verbose_name': 'audit purge marker',
                'ordering': ['-at', '-id'],
            },
        ),
    ]
