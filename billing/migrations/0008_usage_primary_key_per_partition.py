"""The usage primary key moves from the parent table to each month's partition.

A key declared on the partitioned parent is inherited by every partition and cannot be dropped
from one of them. Ingest loads a month's first rows (an empty partition: a backfill, the
first batch of a month) by dropping that partition's key, appending the rows and rebuilding
the key with one sort — several times cheaper than one index insert per row
(bench/RESULTS_billing_metering.md). So each partition now carries its own
``PRIMARY KEY (app_id, api_id, location, hour)``, named ``<partition>_pk``; the partition key
``hour`` is part of it, so per-partition uniqueness is uniqueness over the whole table, and a
re-sent row still replaces, never adds (FEE-2.3). ``usage_partition_ensure`` creates new
partitions with their key; ingest writes into the month's partition directly.
"""

from django.db import migrations

FORWARD = """
ALTER TABLE billing_usage_hourly DROP CONSTRAINT billing_usage_hourly_pk;
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'billing_usage_hourly'::regclass LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (app_id, api_id, location, hour)',
                       part, part::text || '_pk');
    END LOOP;
END $$;
"""

BACKWARD = """
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT con.conrelid::regclass AS part, con.conname FROM pg_constraint con
             JOIN pg_inherits i ON i.inhrelid = con.conrelid
             WHERE i.inhparent = 'billing_usage_hourly'::regclass AND con.contype = 'p' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.part, c.conname);
    END LOOP;
END $$;
ALTER TABLE billing_usage_hourly
    ADD CONSTRAINT billing_usage_hourly_pk PRIMARY KEY (app_id, api_id, location, hour);
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_usage_location_collate_c")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
