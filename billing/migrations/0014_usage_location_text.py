"""The usage table's ``location`` as ``text`` instead of ``varchar(12)`` (same "C" collation).

Assigning a longer string to ``varchar(12)`` silently drops trailing spaces, so
``out_of_cloud   `` was stored as ``out_of_cloud`` by ingest's fast paths while its checked path
refused it: a line's answer depended on whether another line of the batch was bad. As ``text``
the value reaches the ``location_valid`` check as sent, and is refused on every path.
varchar → text is binary-compatible: no table rewrite and no index rebuild (checked on a
partition: same relfilenodes before and after).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("billing", "0013_usage_on_the_hour_date_bin")]

    operations = [
        migrations.RunSQL(
            'ALTER TABLE billing_usage_hourly ALTER COLUMN location TYPE text COLLATE "C"',
            'ALTER TABLE billing_usage_hourly ALTER COLUMN location TYPE varchar(12) COLLATE "C"',
        )
    ]
