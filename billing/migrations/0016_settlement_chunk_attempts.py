"""FEE-4.2: settlement chunks count their attempts and can be failed (for staff to reset).

Safe on a live database: the new columns are nullable or have a constant default (PostgreSQL
stores it in the catalogue, no table rewrite), and ``db_default`` keeps the defaults in the
database so chunks planned by code still running the previous release get them too. The two
CHECKs scan the table once; it holds about one row per 500 organizations per month.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0015_field_verbose_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='settlementchunk',
            name='attempts',
            field=models.PositiveIntegerField(db_default=0, default=0, verbose_name='尝试次数'),
        ),
        migrations.AddField(
            model_name='settlementchunk',
            name='failed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='失败时间'),
        ),
        migrations.AddField(
            model_name='settlementchunk',
            name='last_attempt_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='最近尝试时间'),
        ),
        migrations.AddField(
            model_name='settlementchunk',
            name='last_error',
            field=models.TextField(blank=True, db_default='', default='', verbose_name='最近错误'),
        ),
        migrations.AddConstraint(
            model_name='settlementchunk',
            constraint=models.CheckConstraint(condition=models.Q(('done_at__isnull', True), ('failed_at__isnull', True), _connector='OR'), name='billing_settlementchunk_done_or_failed'),
        ),
    ]
