"""``manage.py verify_ledger``: every wallet's cached balance equals the sum of its ledger
entries (money rules). Exits non-zero and lists the wallets that disagree."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from billing.models import Wallet


class Command(BaseCommand):
    help = "Compare each wallet's balance with the sum of its ledger entries."

    def add_arguments(self, parser):
        parser.add_argument("--organization", type=int, help="check one organization only")

    def handle(self, *args, organization=None, **options):
        wallets = Wallet.objects.all()
        if organization is not None:
            wallets = wallets.filter(organization_id=organization)
        rows = (
            wallets.annotate(ledger_sum=Coalesce(Sum("entries__amount_fen"), 0))
            .exclude(balance_fen=F("ledger_sum"))
            .values_list("organization_id", "balance_fen", "ledger_sum")
        )
        bad = list(rows)
        checked = wallets.count()
        for org_id, balance, total in bad:
            self.stderr.write(f"organization {org_id}: balance_fen={balance} but ledger sum={total}")
        if bad:
            raise CommandError(f"{len(bad)} of {checked} wallets disagree with their ledger.")
        self.stdout.write(self.style.SUCCESS(f"OK: {checked} wallets agree with their ledger."))
