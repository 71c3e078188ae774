"""FEE-2.1: the database keeps a tier history row in force from 2000-01-01 for every API.

Deferred constraint triggers, checked at commit: an API inserted without that row, or an update
or delete of a history row that leaves its API without one, fails the transaction. Creating a
trigger takes a brief lock and reads no rows; APIs that lack the row today are given it by the
next migration (the triggers only look at rows written from now on).
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0016_settlement_chunk_attempts'),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name='api',
            trigger=pgtrigger.compiler.Trigger(name='billing_api_has_tier_history', sql=pgtrigger.compiler.UpsertTriggerSql(constraint='CONSTRAINT', func="\n    IF EXISTS (SELECT 1 FROM billing_api WHERE id = NEW.id)\n       AND NOT EXISTS (\n           SELECT 1 FROM billing_apitierchange\n           WHERE api_id = NEW.id AND effective_from <= DATE '2000-01-01'\n       ) THEN\n        RAISE EXCEPTION 'FEE-2.1: API % has no tier history row in force from 2000-01-01', NEW.id\n            USING ERRCODE = '23514';\n    END IF;\n    RETURN NULL;\n", hash='30dffe24a2c29f85acae7c74e9c3be695c92463c', operation='INSERT', pgid='pgtrigger_billing_api_has_tier_history_64ec0', table='billing_api', timing='DEFERRABLE INITIALLY DEFERRED', when='AFTER')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='apitierchange',
            trigger=pgtrigger.compiler.Trigger(name='billing_apitierchange_keeps_first_row', sql=pgtrigger.compiler.UpsertTriggerSql(constraint='CONSTRAINT', func="\n    IF EXISTS (SELECT 1 FROM billing_api WHERE id = OLD.api_id)\n       AND NOT EXISTS (\n           SELECT 1 FROM billing_apitierchange\n           WHERE api_id = OLD.api_id AND effective_from <= DATE '2000-01-01'\n       ) THEN\n        RAISE EXCEPTION 'FEE-2.1: API % has no tier history row in force from 2000-01-01', OLD.api_id\n            USING ERRCODE = '23514';\n    END IF;\n    RETURN NULL;\n", hash='e5555d52d47c1d9a5cde08799dc3668a4775c8f9', operation='UPDATE OR DELETE', pgid='pgtrigger_billing_apitierchange_keeps_first_row_63465', table='billing_apitierchange', timing='DEFERRABLE INITIALLY DEFERRED', when='AFTER')),
        ),
    ]
