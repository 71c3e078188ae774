# ruff: noqa: E501  (SQL reads better unwrapped)
"""Volume for ``bench_admin.py``: the tables staff page through in admin, filled with
``INSERT … SELECT generate_series`` (no Python per row), then ANALYZEd.

``rows`` is the size of the big tables (top-up orders, payment events, grants, gift orders and
shipments, notifications); the ledger gets about 1.4 times rows, grant events, gift events and the
audit log twice rows, the others a fraction. Every row satisfies the models' constraints, so
the admin pages render them as they would real data.
"""

import time

# {n}: rows; {orgs}: organizations; {creators}: creators; {users}: staff users.
STEPS = [
    (
        "users",
        """INSERT INTO portal_user (password, is_superuser, username, first_name, last_name, email,
             is_staff, is_active, date_joined, display_name, language)
           SELECT '!', false, 'u' || i, '', '', '', i <= {users}, true, now(), '', ''
           FROM generate_series(1, {users} + {creators}) i""",
    ),
    (
        "organizations",
        """INSERT INTO portal_organization (name, kind, contact_email, created_at)
           SELECT (ARRAY['星河','跨境','好物','旗舰','美妆','Global','Star','Home'])[1 + i % 8]
                  || (ARRAY['数码','母婴','食品','家居','服饰','Tech','Beauty'])[1 + (i / 8) % 7] || i || '号店',
                  (ARRAY['shop','agency','service_provider'])[1 + i % 3], '', now() - interval '3 years'
           FROM generate_series(1, {orgs}) i""",
    ),
    (
        "creators",
        """INSERT INTO portal_creator (nickname, douyin_id, avatar_url, user_id)
           SELECT '达人' || i, 'dy' || i, '', u.id
           FROM generate_series(1, {creators}) i
           JOIN portal_user u ON u.username = 'u' || ({users} + i)""",
    ),
    (
        "wallets",
        """INSERT INTO billing_wallet (balance_fen, created_at, updated_at, organization_id)
           SELECT 0, now(), now(), id FROM portal_organization""",
    ),
    (
        "top-up orders",
        """INSERT INTO billing_topuporder (out_trade_no, amount_fen, currency, provider, state,
             provider_trade_no, failure_reason, created_at, expires_at, paid_at, organization_id)
           SELECT 'T' || lpad(i::text, 12, '0'), 100 + (i::bigint * 7919) % 1000000, 'CNY',
                  (ARRAY['sandbox','alipay','wechat'])[1 + i % 3],
                  CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'paid' END,
                  CASE WHEN i % 3 = 0 THEN '' ELSE 'P' || i END, '',
                  now() - make_interval(secs => ({n} - i) * 90),
                  now() - make_interval(secs => ({n} - i) * 90) + interval '30 minutes',
                  CASE WHEN i % 3 = 0 THEN NULL ELSE now() - make_interval(secs => ({n} - i) * 90) END,
                  (SELECT min(id) FROM portal_organization) + i % {orgs}
           FROM generate_series(1, {n}) i""",
    ),
    (
        "ledger: top-up credits",
        """INSERT INTO billing_ledgerentry (kind, amount_fen, balance_after_fen, reference, created_at,
             top_up_order_id, wallet_id)
           SELECT 'top_up_credit', o.amount_fen, o.amount_fen, o.out_trade_no, o.paid_at, o.id, w.id
           FROM billing_topuporder o JOIN billing_wallet w ON w.organization_id = o.organization_id
           WHERE o.state = 'paid' ORDER BY o.paid_at""",
    ),
    (
        "ledger: settlement charges",
        """INSERT INTO billing_ledgerentry (kind, amount_fen, balance_after_fen, reference, created_at,
             period_year, period_month, wallet_id)
           SELECT 'settlement_charge', -((w.id * 31 + m) % 50000), 0, '',
                  make_date(2023 + (m + 2) / 12, 1 + (m + 2) % 12, 1) + interval '1 month 3 hours', 2023 + (m + 2) / 12, 1 + (m + 2) % 12, w.id
           FROM generate_series(0, 35) m CROSS JOIN billing_wallet w ORDER BY m, w.id""",
    ),
    (
        "payment events",
        """INSERT INTO billing_paymentevent (provider, event_id, status, amount_fen, currency, outcome,
             payload, received_at, order_id)
           SELECT o.provider, 'E' || o.id, 'SUCCESS', o.amount_fen, 'CNY',
                  CASE WHEN o.state = 'paid' THEN 'credited' ELSE 'failed' END, '{{}}', o.created_at, o.id
           FROM billing_topuporder o""",
    ),
    (
        "invoices",
        """INSERT INTO billing_invoice (amount_fen, title, taxpayer_id, kind, email, state, number, pdf,
             reject_reason, requested_at, organization_id)
           SELECT 1000 + i % 99999, '发票抬头' || i, lpad((i * 37)::text, 18, '9'),
                  (ARRAY['general','special_vat'])[1 + i % 2], 'a@example.com',
                  CASE WHEN i % 50 = 0 THEN 'requested' ELSE 'issued' END,
                  CASE WHEN i % 50 = 0 THEN NULL ELSE 'INV' || lpad(i::text, 10, '0') END, '', '',
                  now() - make_interval(secs => ({n} / 2 - i) * 180),
                  (SELECT min(id) FROM portal_organization) + i % {orgs}
           FROM generate_series(1, {n} / 2) i""",
    ),
    (
        "settlement runs and bills",
        """INSERT INTO billing_settlementrun (year, month, status, orgs_total, orgs_done, chunks_total,
             lines_total, created_at, finished_at, last_error, recheck)
           SELECT 2023 + (m + 2) / 12, 1 + (m + 2) % 12, 'done', {orgs}, {orgs}, 1, 0, now(), now(), '', '{{}}'
           FROM generate_series(0, 35) m;
           INSERT INTO billing_bill (year, month, subtotal_fen, discount_fen, total_fen, ledger_entry_id,
             settled_at, organization_id, run_id)
           SELECT l.period_year, l.period_month, -l.amount_fen, 0, -l.amount_fen, l.id, l.created_at,
                  w.organization_id, r.id
           FROM billing_ledgerentry l JOIN billing_wallet w ON w.id = l.wallet_id
           JOIN billing_settlementrun r ON r.year = l.period_year AND r.month = l.period_month
           WHERE l.kind = 'settlement_charge'""",
    ),
    (
        "usage batches",
        """INSERT INTO billing_usagebatch (batch_id, source, rows_total, rows_accepted, rows_rejected,
             errors, received_at, seconds)
           SELECT 'B' || lpad(i::text, 10, '0'), 'gateway', 1000, 1000, 0, '[]',
                  now() - make_interval(secs => ({n} / 10 - i) * 300), 0.5
           FROM generate_series(1, {n} / 10) i""",
    ),
    (
        "grants",
        """INSERT INTO authorization_grant (scope, start_date, end_date, is_current, created_at,
             revoke_reason, creator_id, organization_id)
           SELECT 'all_data', current_date - (i % 300), current_date - (i % 300) + 30 + i % 365, true,
                  now() - make_interval(secs => ({n} - i) * 60), '',
                  (SELECT min(id) FROM portal_creator) + i % {creators},
                  (SELECT min(id) FROM portal_organization) + (i / {creators}) % {orgs}
           FROM generate_series(1, {n}) i""",
    ),
    (
        "grant events",
        """INSERT INTO authorization_grantevent (operation, new_start_date, new_end_date, reason, at, grant_id)
           SELECT CASE WHEN k = 0 THEN 'authorize' ELSE 'renew' END, g.start_date, g.end_date, '',
                  g.created_at + make_interval(days => k), g.id
           FROM authorization_grant g CROSS JOIN generate_series(0, 1) k""",
    ),
    (
        "gift catalogue",
        """INSERT INTO gifts_giftcategory (name, is_prohibited, licence_required, licence_type, created_at)
           SELECT '类目' || i, false, false, '', now() FROM generate_series(1, 20) i;
           INSERT INTO gifts_product (title, subtitle, main_image_shows_gift_alone, gift_more_prominent,
             promised_ship_hours, state, created_at, shop_id)
           SELECT '商品' || i, '', false, false, 48, 'listed', now(),
                  (SELECT min(id) FROM portal_organization) + i % {orgs}
           FROM generate_series(1, {n} / 20) i;
           INSERT INTO gifts_gift (name, brand, kind, spec, ship_from, value_basis, fair_value_overrides_declared,
             fair_value_reason, near_expiry, is_lottery, state, state_reason, domestic_shipping_approved,
             created_at, submitted_at, updated_at, created_by_id, shop_id, category_id)
           SELECT '赠品' || i, '品牌', 'physical', '', 'overseas', '', false, '', false, false,
                  CASE WHEN i % 10 = 0 THEN 'submitted' ELSE 'approved' END, '', false,
                  now(), now() - make_interval(mins => i), now(), (SELECT min(id) FROM portal_user),
                  (SELECT min(id) FROM portal_organization) + i % {orgs},
                  (SELECT min(id) FROM gifts_giftcategory) + i % 20
           FROM generate_series(1, {n} / 20) i""",
    ),
    (
        "gift orders",
        """INSERT INTO gifts_order (order_no, paid_amount_fen, paid_at, ship_by_at, product_dispute_state,
             created_at, shop_id, product_id)
           SELECT 'O' || lpad(i::text, 14, '0'), 5000 + i % 10000, now() - make_interval(secs => ({n} - i) * 60),
                  now() - make_interval(secs => ({n} - i) * 60) + interval '2 days', 'none',
                  now() - make_interval(secs => ({n} - i) * 60), p.shop_id, p.id
           FROM generate_series(1, {n}) i
           JOIN gifts_product p ON p.id = (SELECT min(id) FROM gifts_product) + i % ({n} / 20)""",
    ),
    (
        "gift shipments",
        """INSERT INTO gifts_giftshipment (quantity, shipped_at, tracking_no, late_cause, fake_shipping,
             created_at, gift_id, order_id)
           SELECT 1, o.paid_at + interval '1 day', 'SF' || o.id, '', false, o.created_at,
                  (SELECT min(id) FROM gifts_gift) + o.id % ({n} / 20), o.id
           FROM gifts_order o""",
    ),
    (
        "violations",
        """INSERT INTO gifts_violation (rule_id, violation_type, evidence, penalty_note, gift_value_fen, weight,
             occurred_at, recorded_at, source_key, gift_id, rule_version_id, shop_id)
           SELECT (ARRAY['GIFT-4.2','GIFT-2.1','GIFT-3'])[1 + i % 3], 'late_shipping', '{{}}', '', 1000, 1 + i % 3,
                  now() - make_interval(secs => ({n} / 2 - i) * 120), now(), 'bench:' || i,
                  g.id, (SELECT min(id) FROM gifts_ruleversion), g.shop_id
           FROM generate_series(1, {n} / 2) i
           JOIN gifts_gift g ON g.id = (SELECT min(id) FROM gifts_gift) + i % ({n} / 20)""",
    ),
    (
        "gift disputes",
        """INSERT INTO gifts_giftdispute (kind, consumer_claim, state, opened_at, response_deadline_at,
             merchant_response, decision, decision_note, return_shipping_payer, calculation, gift_id, shop_id,
             order_id)
           SELECT 'not_delivered', '', CASE WHEN s.id % 10 = 0 THEN 'awaiting_merchant' ELSE 'merchant_responded' END,
                  o.paid_at + interval '3 days', o.paid_at + interval '5 days', '', '', '', '', '{{}}',
                  s.gift_id, o.shop_id, o.id
           FROM gifts_giftshipment s JOIN gifts_order o ON o.id = s.order_id WHERE s.id % 5 = 0""",
    ),
    (
        "gift events",
        """INSERT INTO gifts_giftevent (kind, from_state, to_state, rule_id, details, at, shop_id, gift_id)
           SELECT (ARRAY['submitted','approved','shipment_recorded','violation'])[1 + i % 4], '', '', '', '{{}}',
                  now() - make_interval(secs => (2 * {n} - i) * 30), g.shop_id, g.id
           FROM generate_series(1, 2 * {n}) i
           JOIN gifts_gift g ON g.id = (SELECT min(id) FROM gifts_gift) + i % ({n} / 20)""",
    ),
    (
        "audit log",
        """INSERT INTO portal_auditentry (action, object_type, object_id, details, at, actor_id)
           SELECT (ARRAY['billing.topup_credit','grant.revoke','gifts.approve','admin.change'])[1 + i % 4],
                  (ARRAY['billing.topuporder','authorization.grant','gifts.gift','portal.organization'])[1 + i % 4],
                  i::text, '{{}}', now() - make_interval(secs => (2 * {n} - i) * 30),
                  CASE WHEN i % 5 = 0 THEN NULL ELSE (SELECT min(id) FROM portal_user) + i % {users} END
           FROM generate_series(1, 2 * {n}) i""",
    ),
    (
        "notifications",
        """INSERT INTO portal_notification (kind, title, body, url, created_at, user_id, organization_id,
             body_msgid, params, title_msgid)
           SELECT 'grant.expiring', '授权即将到期 ' || i, '', '', now() - make_interval(secs => ({n} - i) * 60),
                  CASE WHEN i % 2 = 0 THEN (SELECT min(id) FROM portal_user) + i % {users} END,
                  CASE WHEN i % 2 = 1 THEN (SELECT min(id) FROM portal_organization) + i % {orgs} END,
                  '', '{{}}', ''
           FROM generate_series(1, {n}) i""",
    ),
]

BIG_TABLES = [
    "billing_topuporder",
    "billing_ledgerentry",
    "billing_paymentevent",
    "billing_invoice",
    "billing_bill",
    "billing_usagebatch",
    "authorization_grant",
    "authorization_grantevent",
    "gifts_order",
    "gifts_giftshipment",
    "gifts_violation",
    "gifts_giftdispute",
    "gifts_giftevent",
    "portal_auditentry",
    "portal_notification",
]


def sizes(rows: int) -> dict:
    return {"n": rows, "orgs": max(rows // 50, 100), "creators": max(rows // 5, 100), "users": 1000}


def load(cursor, rows: int, log=print) -> None:
    """Fill an empty (migrated) database; ``rows`` must be a multiple of 20."""
    params = sizes(rows)
    # Foreign keys are checked by triggers, deferred to the commit: millions of single-row
    # lookups after the load. The rows are built consistent; the replica role skips them.
    cursor.execute("SET session_replication_role = replica")
    for label, sql in STEPS:
        t0 = time.perf_counter()
        for statement in sql.format(**params).split(";\n"):
            cursor.execute(statement)
        log(f"  {label}: {time.perf_counter() - t0:.1f} s")
    cursor.execute("SET session_replication_role = DEFAULT")
    t0 = time.perf_counter()
    cursor.execute("ANALYZE")
    log(f"  ANALYZE: {time.perf_counter() - t0:.1f} s")
