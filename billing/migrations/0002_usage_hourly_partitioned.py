"""The usage table, partitioned by month (PostgreSQL declarative partitioning).

Django cannot declare ``PARTITION BY``, so the table is created here and ``UsageHourly`` is an
unmanaged model over it. Partitions are one Asia/Shanghai month each, created ahead by the
``billing-usage-partitions`` beat entry and on demand by ingest
(``billing.services.usage.usage_partition_ensure``). The primary key (app, api, location,
hour) is what makes a re-sent row replace the old one (INSERT ... ON CONFLICT DO UPDATE).
No foreign keys: ingest validates app and API by joining the catalog, and a per-row FK check
would double the cost of loading 10 million rows; apps and APIs are never deleted (PROTECT
from bills, no delete in admin).
"""

from django.db import migrations

CREATE = """
CREATE TABLE billing_usage_hourly (
    app_id   bigint      NOT NULL,
    api_id   bigint      NOT NULL,
    location varchar(12) NOT NULL,
    hour     timestamptz NOT NULL,
    calls    bigint      NOT NULL,
    CONSTRAINT billing_usage_hourly_pk PRIMARY KEY (app_id, api_id, location, hour),
    CONSTRAINT billing_usage_hourly_location_valid CHECK (location IN ('in_cloud', 'out_of_cloud')),
    CONSTRAINT billing_usage_hourly_calls_not_negative CHECK (calls >= 0),
    CONSTRAINT billing_usage_hourly_on_the_hour CHECK (extract(epoch FROM hour) % 3600 = 0)
) PARTITION BY RANGE (hour);

-- Ingest casts a whole staged batch at once; only when that fails (a bad date somewhere) does
-- it fall back to these per-row casts, which turn an invalid value into NULL instead of an error.
CREATE FUNCTION billing_try_timestamptz(t text) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE FUNCTION billing_try_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_catalog_usage_settlement")]

    operations = [migrations.RunSQL(CREATE, "DROP TABLE IF EXISTS billing_usage_hourly CASCADE; DROP FUNCTION IF EXISTS billing_try_timestamptz(text); DROP FUNCTION IF EXISTS billing_try_jsonb(text);")]
