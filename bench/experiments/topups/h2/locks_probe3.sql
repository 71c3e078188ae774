SET plan_cache_mode=force_custom_plan;
PREPARE nx AS SELECT nextval('oseq') AS n;
PREPARE cr(bigint) AS WITH o AS (     SELECT id, organization_id, amount_fen, currency, state     FROM billing_topuporder     WHERE out_trade_no = 'T' || $1 AND provider = 'sandbox'     FOR UPDATE ), verdict AS (     SELECT CASE         WHEN NOT EXISTS (SELECT 1 FROM o) THEN 'unknown_order'         WHEN (SELECT amount_fen <> 1000::int8 OR currency <> 'CNY' FROM o) THEN 'rejected_mismatch'         WHEN (SELECT state FROM o) = 'paid' THEN 'already_paid'         ELSE 'credited'     END AS outcome ), e AS (     INSERT INTO billing_paymentevent         (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)     SELECT 'sandbox', 'evt' || $1, (SELECT id FROM o), 'paid', 1000::int8, 'CNY',            verdict.outcome, '{}'::jsonb, now()     FROM verdict     ON CONFLICT (provider, event_id) DO NOTHING     RETURNING outcome ), paid AS (     UPDATE billing_topuporder t     SET state = 'paid', paid_at = now(), finished_at = now(), provider_trade_no = 'SBX'     FROM o, e     WHERE t.id = o.id AND e.outcome = 'credited'     RETURNING t.id, t.organization_id, t.amount_fen, t.out_trade_no ), w AS (     INSERT INTO billing_wallet (organization_id, balance_fen, created_at, updated_at)     SELECT organization_id, amount_fen, now(), now() FROM paid     ON CONFLICT (organization_id) DO UPDATE         SET balance_fen = billing_wallet.balance_fen + EXCLUDED.balance_fen, updated_at = EXCLUDED.updated_at     RETURNING id, balance_fen ), l AS (     INSERT INTO billing_ledgerentry         (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)     SELECT w.id, 'top_up_credit', paid.amount_fen, w.balance_fen, paid.id,            'top-up ' || paid.out_trade_no, now()     FROM paid, w     RETURNING id ) SELECT (SELECT outcome FROM e), (SELECT organization_id FROM o), (SELECT count(*) FROM l),        (SELECT balance_fen FROM w), (SELECT amount_fen FROM paid);;
-- warm: 6 credits in own transactions (generic plan kicks in after 5)
SELECT 'T'||(399700+g) FROM generate_series(1,1) g;
BEGIN; EXECUTE nx; EXECUTE cr(399701); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399702); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399703); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399704); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399705); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399706); COMMIT;
BEGIN; EXECUTE nx; EXECUTE cr(399707);
SELECT 'before_commit', fastpath, count(distinct relation), string_agg(relation::regclass::text||':'||mode, ' ' ORDER BY relation::regclass::text) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype='relation' AND relation <> 'pg_locks'::regclass GROUP BY fastpath;
SET CONSTRAINTS ALL IMMEDIATE;
SELECT 'after_fk', fastpath, count(distinct relation), string_agg(relation::regclass::text||':'||mode, ' ' ORDER BY relation::regclass::text) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype='relation' AND relation <> 'pg_locks'::regclass GROUP BY fastpath;
ROLLBACK;
