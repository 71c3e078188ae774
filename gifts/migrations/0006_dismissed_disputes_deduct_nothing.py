"""Data: a dismissed "gift lost on return" dispute was stored with the gift's value as the refund
deduction (GIFT-5.4 lets the merchant deduct only when the claim is upheld). Clear it, so the
check added next (``gifts_giftdispute_deduction_only_when_upheld``) holds for existing rows.
The figure stays in each dispute's ``calculation``, which records the preview, not the outcome.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    GiftDispute = apps.get_model("gifts", "GiftDispute")
    GiftDispute.objects.exclude(decision="upheld").filter(refund_deduction_fen__gt=0).update(
        refund_deduction_fen=0
    )


class Migration(migrations.Migration):
    dependencies = [("gifts", "0005_dispute_compensated_once")]

    # Backwards leaves the rows corrected: the old code accepted a zero deduction too.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
