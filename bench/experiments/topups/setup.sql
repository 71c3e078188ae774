CREATE SEQUENCE IF NOT EXISTS oseq;
INSERT INTO billing_topuporder (out_trade_no, amount_fen, currency, provider, state, provider_trade_no, failure_reason, created_at, expires_at, organization_id)
SELECT 'T' || g, 1000, 'CNY', 'sandbox', 'pending', '', '', now(), now() + interval '30 min', 1 + (g::bigint * 7919) % 1000
FROM generate_series(1, 400000) g;
CREATE TABLE IF NOT EXISTS bench_bare_balance (id bigint PRIMARY KEY, balance bigint NOT NULL);
TRUNCATE bench_bare_balance; INSERT INTO bench_bare_balance SELECT g, 0 FROM generate_series(1,1000) g;
VACUUM ANALYZE;
