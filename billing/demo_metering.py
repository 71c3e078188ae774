"""Billing II demo data (idempotent): an API catalog with a price change, apps for the demo
developer and a shop, three months of hourly usage (through the real ingest path, fixed batch
ids so reseeding counts once), a discount, an out-of-cloud permission, and the two ended
months before this one settled (bills + charges) on their real settlement dates; the previous
month only from the 5th on (FEE-4.2), as the beat would."""

import datetime as dt
import hashlib
import random

from django.db import transaction

from billing import demo_wallet
from billing.models import Api, ApiPrice, App, Discount, OutOfCloudPermission
from billing.services import metering as svc
from billing.services.settlement import settlement_opens_at, settlement_run_month
from billing.services.usage import CSV_HEADER, usage_ingest
from portal import clock, demo

CATALOG = [
    # code, title, tier, [(effective_from, fen per 1,000 calls)]
    ("logistics.trace", "物流轨迹查询", Api.Tier.FREE, []),
    ("order.list", "订单列表", Api.Tier.BASIC, [(dt.date(2023, 3, 1), 50)]),
    ("product.list", "商品列表", Api.Tier.BASIC, [(dt.date(2023, 3, 1), 30), (dt.date(2026, 1, 1), 40)]),
    ("compass.data", "罗盘经营数据", Api.Tier.VALUE_ADDED, [(dt.date(2023, 3, 1), 800)]),
    ("order.decrypt", "订单敏感信息解密", Api.Tier.VALUE_ADDED, [(dt.date(2023, 3, 1), 1200)]),
]
APPS = [("provider", "星河ERP"), ("provider", "星河智能客服"), ("shop", "好物自研工具")]


def _months_back(today: dt.date, n: int) -> list[tuple[int, int]]:
    y, m = today.year, today.month
    out = []
    for _ in range(n + 1):
        out.append((y, m))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return list(reversed(out))


def _usage_csv(apps: list[App], apis: dict, year: int, month: int, until: dt.datetime) -> bytes:
    rnd = random.Random(f"{year}-{month}")  # deterministic: reseeding sends the same batch
    start, end = clock.month_range(year, month)
    end = min(end, until)
    lines = [CSV_HEADER]
    hour = start
    while hour < end:
        for app in apps:
            for code, loc, scale in (
                ("order.list", "in_cloud", 400),
                ("product.list", "in_cloud", 300),
                ("logistics.trace", "out_of_cloud", 200),
                ("compass.data", "in_cloud", 40),
                ("order.decrypt", "out_of_cloud", 10),
            ):
                if code == "order.decrypt" and app.name != "星河ERP":
                    continue
                calls = rnd.randint(0, scale)
                if calls:
                    lines.append(f"{app.app_key},{apis[code].code},{loc},{hour.isoformat()},{calls}")
        hour += dt.timedelta(hours=3)
    return ("\n".join(lines) + "\n").encode()


def seed() -> None:
    apis = {}
    with transaction.atomic():
        for code, title, tier, prices in CATALOG:
            api = Api.objects.filter(code=code).first() or svc.api_create(code=code, tier=tier, title=title)
            apis[code] = api
            for since, price in prices:
                if not ApiPrice.objects.filter(api=api, effective_from=since).exists():
                    svc.api_price_set(api=api, price_fen_per_1000=price, effective_from=since)
        apps = []
        for org_key, name in APPS:
            org = demo.organization(org_key)
            app = App.objects.filter(organization=org, name=name).first()
            if app is None:
                app, _raw = svc.app_create_for_organization(organization_id=org.id, name=name)
            apps.append(app)
        erp = apps[0]
        if not OutOfCloudPermission.objects.filter(app=erp, api=apis["order.decrypt"]).exists():
            svc.permission_grant(
                app=erp, api=apis["order.decrypt"], actor=demo.user("billing_ops"), note="demo"
            )
        if not Discount.objects.filter(app=erp).exists():
            today = clock.today()
            svc.discount_set(
                app=erp,
                rate="0.2",
                valid_from=dt.date(today.year - 1, 1, 1),
                valid_to=dt.date(today.year + 1, 12, 31),
                reason="优质服务商 demo",
                actor=demo.user("billing_ops"),
            )
    now = clock.now()
    months = _months_back(clock.today(), 2)
    for year, month in months:
        data = _usage_csv(apps, apis, year, month, now.replace(minute=0, second=0, microsecond=0))
        # Named by its content: the current month's batch grows every three hours, so a re-seed
        # later sends a new batch (its re-sent hours replace, never add: FEE-2.3) instead of
        # reusing the id for another body, which ingest refuses (BATCH-ID-REUSED).
        digest = hashlib.sha256(data).hexdigest()[:16]
        usage_ingest(
            data=data, batch_id=f"demo-usage-{year}-{month:02d}-{digest}", fmt="csv", source="command"
        )
    for year, month in months[:-1]:
        if clock.now() < settlement_opens_at(year, month):
            continue  # FEE-4.2: last month is not settled before the 5th (the beat settles it then)
        # On its real date (02:00 on the 5th after the month), so the charges it writes sit in
        # the wallet's history where the beat would have put them.
        with clock.travel(demo_wallet.settlement_instant(year, month)):
            settlement_run_month(year=year, month=month)
