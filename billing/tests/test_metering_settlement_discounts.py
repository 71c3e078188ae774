"""FEE-5.1 discounts at settlement: a discount applies to the Asia/Shanghai usage days inside its
validity (valid_from..valid_to, inclusive), the highest rate if two ever cover one day.

Money (billing.services.settlement.DISCOUNT_CTES): per line and rate, the discountable amount is
round_half_up(calls x price / 1000 over the discounted days); per app, discount =
round_half_up(sum of rate x discountable amount)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from billing.models import Bill, BillApp, BillLine
from billing.services import settlement
from billing.tests.factories_metering import AppFactory, DiscountFactory, paid_api, record_usage, sh
from billing.tests.factories_wallet import ledger_sum

IN, OUT = "in_cloud", "out_of_cloud"


def settle(year=2026, month=3):
    return settlement.settlement_run_month(year=year, month=month)


def discount(app, rate, valid_from, valid_to):
    return DiscountFactory(app=app, rate=Decimal(rate), valid_from=valid_from, valid_to=valid_to)


def app_row(app, year=2026, month=3):
    row = BillApp.objects.get(app=app, bill__year=year, bill__month=month)
    return row.subtotal_fen, row.discount_rate, row.discount_fen, row.total_fen


@pytest.mark.django_db
class TestDiscountDays:
    def test_fee_5_1_whole_month_discount_is_subtotal_times_rate_rounded_half_up(self, org):
        # given two apps of one organization, one with a discount covering all of March
        api = paid_api(price_fen_per_1000=3)
        a1, a2 = AppFactory(organization=org), AppFactory(organization=org)
        discount(a1, "0.5", dt.date(2026, 2, 1), dt.date(2026, 6, 1))
        record_usage([(a1, api, IN, sh(2026, 3, 5), 1000), (a2, api, IN, sh(2026, 3, 5), 1000)])
        # when March is settled
        settle()
        # then 3 fen x 50% = 1.5 → 2 fen off; the other app pays in full
        assert app_row(a1) == (3, Decimal("0.5"), 2, 1)
        assert app_row(a2) == (3, Decimal(0), 0, 3)
        bill = Bill.objects.get()
        assert (bill.subtotal_fen, bill.discount_fen, bill.total_fen) == (6, 2, 4)
        assert ledger_sum(org.id) == -4

    def test_fee_5_1_discount_valid_one_day_mid_month_covers_only_that_day(self, app):
        # given a 20% discount valid on 2026-03-10 only and 1000 fen of usage on each of three days
        api = paid_api(price_fen_per_1000=1000)
        discount(app, "0.2", dt.date(2026, 3, 10), dt.date(2026, 3, 10))
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 9, 23), 1000),
                (app, api, IN, sh(2026, 3, 10, 0), 1000),  # first hour of the day
                (app, api, IN, sh(2026, 3, 10, 23), 1000),  # last hour of the day
                (app, api, IN, sh(2026, 3, 11, 0), 1000),
            ]
        )
        # when settled
        settle()
        # then only the 10th's 2000 fen are discounted: 400 fen off 4000
        assert app_row(app) == (4000, Decimal("0.2"), 400, 3600)
        # and the bill line shows which calls were discounted at which rate
        line = BillLine.objects.get()
        assert line.prices == [
            {"price": 1000, "calls": 4000, "from": "2026-03-09", "discounted": [{"rate": 0.2, "calls": 2000}]}
        ]
        assert line.discounted_calls == [(Decimal("0.2"), 2000)]
        assert line.discounted_label == "2,000 次, 优惠 20%"

    def test_fee_5_1_discount_starting_on_the_20th_leaves_earlier_days_undiscounted(self, app):
        # given a 50% discount from 2026-03-20 on, usage on the 5th and on the 25th
        api = paid_api(price_fen_per_1000=100)
        discount(app, "0.5", dt.date(2026, 3, 20), dt.date(2026, 12, 31))
        record_usage([(app, api, IN, sh(2026, 3, 5), 10_000), (app, api, OUT, sh(2026, 3, 25), 30_000)])
        # when settled
        settle()
        # then only the 25th's 3000 fen get 50% off
        assert app_row(app) == (1000 + 3000, Decimal("0.5"), 1500, 2500)
        amounts = dict(BillLine.objects.values_list("location", "amount_fen"))
        assert amounts == {IN: 1000, OUT: 3000}

    def test_fee_5_1_two_discounts_in_one_month_each_day_gets_its_own_rate(self, app):
        # given 10% from the 1st to the 15th, 30% from the 16th to the 31st
        api = paid_api(price_fen_per_1000=1000)
        discount(app, "0.1", dt.date(2026, 3, 1), dt.date(2026, 3, 15))
        discount(app, "0.3", dt.date(2026, 3, 16), dt.date(2026, 3, 31))
        record_usage([(app, api, IN, sh(2026, 3, 15, 23), 1000), (app, api, IN, sh(2026, 3, 16), 2000)])
        # when settled
        settle()
        # then 1000 x 10% + 2000 x 30% = 700 off; the bill shows the highest rate applied
        assert app_row(app) == (3000, Decimal("0.3"), 700, 2300)
        assert BillLine.objects.get().prices[0]["discounted"] == [
            {"rate": 0.1, "calls": 1000},
            {"rate": 0.3, "calls": 2000},
        ]
        # and the line's label (page, PDF) shows both rates with their calls
        assert BillLine.objects.get().discounted_label == "1,000 次, 优惠 10% / 2,000 次, 优惠 30%"

    def test_fee_5_1_database_refuses_two_overlapping_discounts_of_one_app(self, app):
        discount(app, "0.1", dt.date(2026, 3, 1), dt.date(2026, 3, 15))
        with pytest.raises(IntegrityError), transaction.atomic():
            discount(app, "0.3", dt.date(2026, 3, 15), dt.date(2026, 3, 31))

    def test_fee_5_1_overlapping_discounts_the_highest_rate_applies_to_the_shared_days(self, app):
        # given overlapping discounts (the exclusion constraint dropped, inside this test's
        # transaction only: the settlement SQL must not double-discount a day if it ever happens)
        with connection.cursor() as cur:
            cur.execute("ALTER TABLE billing_discount DROP CONSTRAINT billing_discount_no_overlap")
        api = paid_api(price_fen_per_1000=1000)
        discount(app, "0.1", dt.date(2026, 3, 1), dt.date(2026, 3, 20))
        discount(app, "0.3", dt.date(2026, 3, 10), dt.date(2026, 3, 31))
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 5), 1000),  # 10% only
                (app, api, IN, sh(2026, 3, 15), 1000),  # both: 30%
                (app, api, IN, sh(2026, 3, 25), 1000),  # 30% only
            ]
        )
        # when settled
        settle()
        # then 100 + 300 + 300 off, each day discounted once
        assert app_row(app) == (3000, Decimal("0.3"), 700, 2300)

    def test_fee_5_1_discount_across_the_month_boundary_counts_its_days_in_each_month(self, app):
        # given a 20% discount from 2026-02-20 to 2026-03-10
        api = paid_api(price_fen_per_1000=1000)
        discount(app, "0.2", dt.date(2026, 2, 20), dt.date(2026, 3, 10))
        record_usage(
            [
                (app, api, IN, sh(2026, 2, 10), 1000),  # February, before the discount
                (app, api, IN, sh(2026, 2, 25), 1000),  # February, discounted
                (app, api, IN, sh(2026, 3, 10, 23), 1000),  # March 10, the last day: discounted
                (app, api, IN, sh(2026, 3, 11), 1000),  # after it
            ]
        )
        # when February and March are settled
        settle(2026, 2)
        settle(2026, 3)
        # then each month is discounted on its own covered days only
        assert app_row(app, 2026, 2) == (2000, Decimal("0.2"), 200, 1800)
        assert app_row(app, 2026, 3) == (2000, Decimal("0.2"), 200, 1800)
        assert ledger_sum(app.organization_id) == -3600

    def test_fee_5_1_discount_rounds_per_line_amount_then_once_per_app(self, org):
        # given price 1 fen / 1000 calls and a discount on the 2nd only: the in-cloud line has
        # 1.5 fen on the 2nd (→ 2 fen discountable), the out-of-cloud line 0.5 fen (→ 1 fen)
        api = paid_api(price_fen_per_1000=1)
        app = AppFactory(organization=org)
        discount(app, "0.5", dt.date(2026, 3, 2), dt.date(2026, 3, 2))
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 1), 1000),
                (app, api, IN, sh(2026, 3, 2), 1500),
                (app, api, OUT, sh(2026, 3, 2), 500),
            ]
        )
        # when settled
        settle()
        # then lines are 2.5 → 3 and 0.5 → 1 fen; discount = round_half_up(0.5 x (2 + 1)) = 2
        assert dict(BillLine.objects.values_list("location", "amount_fen")) == {IN: 3, OUT: 1}
        assert app_row(app) == (4, Decimal("0.5"), 2, 2)

    def test_fee_5_1_recheck_agrees_with_a_day_discounted_bill(self, app):
        api = paid_api(price_fen_per_1000=1000)
        discount(app, "0.25", dt.date(2026, 3, 10), dt.date(2026, 3, 12))
        record_usage([(app, api, IN, sh(2026, 3, 11), 400), (app, api, IN, sh(2026, 3, 20), 400)])
        settle()
        assert Bill.objects.get().total_fen == 700
        assert settlement.settlement_recheck_month(year=2026, month=3)["ok"]


@pytest.mark.django_db
class TestSettledMonthsKeepTheirDiscounts:
    """FEE-4.2/FEE-5.1: a settled month never changes, so its discounts do not either; else its
    bills, the "my discounts" page and the month's recheck disagree."""

    @pytest.fixture
    def settled_march(self, app):
        from billing.tests.factories_metering import top_up

        api = paid_api(price_fen_per_1000=1000)
        top_up(app.organization, 100_000)
        record_usage([(app, api, IN, sh(2026, 3, 2, 10), 1000)])
        settle()
        return app

    def test_fee_4_2_a_discount_cannot_be_backdated_into_a_settled_month(self, settled_march):
        from billing.services import metering as svc
        from portal.errors import DomainError

        with pytest.raises(DomainError, match=r"FEE-4\.2: 2026-03") as refused:
            svc.discount_set(
                app=settled_march,
                rate=Decimal("0.5"),
                valid_from=dt.date(2026, 3, 1),
                valid_to=dt.date(2026, 4, 30),
            )
        assert refused.value.field == "valid_from"
        assert not settled_march.discounts.exists()
        assert settlement.settlement_recheck_month(year=2026, month=3)["ok"]

    def test_fee_4_2_a_discount_over_a_settled_month_is_neither_edited_nor_deleted(self, app):
        from billing.services import metering as svc
        from portal.errors import DomainError

        # given a discount from February to June, and March settled with it
        d = discount(app, "0.2", dt.date(2026, 2, 1), dt.date(2026, 6, 30))
        record_usage([(app, paid_api(price_fen_per_1000=1000), IN, sh(2026, 3, 2, 10), 1000)])
        settle()
        # when staff change its rate, move its start into March, or delete it: refused
        for rate, start in (("0.5", dt.date(2026, 2, 1)), ("0.2", dt.date(2026, 3, 15))):
            with pytest.raises(DomainError, match=r"FEE-4\.2"):
                svc.discount_set(
                    app=app, rate=Decimal(rate), valid_from=start, valid_to=dt.date(2026, 6, 30), discount=d
                )
        with pytest.raises(DomainError, match=r"FEE-4\.2"):
            svc.discount_delete(discount=d)
        d.refresh_from_db()
        assert (d.rate, d.valid_from, d.valid_to) == (
            Decimal("0.2"),
            dt.date(2026, 2, 1),
            dt.date(2026, 6, 30),
        )
        # but ending it earlier, after the settled month, is allowed
        svc.discount_set(
            app=app,
            rate=Decimal("0.2"),
            valid_from=dt.date(2026, 2, 1),
            valid_to=dt.date(2026, 4, 10),
            discount=d,
        )
        d.refresh_from_db()
        assert d.valid_to == dt.date(2026, 4, 10)
        assert settlement.settlement_recheck_month(year=2026, month=3)["ok"]

    def test_fee_5_1_a_discount_after_the_settled_months_is_accepted(self, settled_march):
        from billing.services import metering as svc

        d = svc.discount_set(
            app=settled_march,
            rate=Decimal("0.3"),
            valid_from=dt.date(2026, 4, 1),
            valid_to=dt.date(2026, 4, 30),
        )
        svc.discount_delete(discount=d)
        assert not settled_march.discounts.exists()
