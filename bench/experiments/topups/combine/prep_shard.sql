DROP TABLE IF EXISTS credit_req; DROP FUNCTION IF EXISTS credit_apply(bigint, text);
CREATE UNLOGGED TABLE credit_req (id bigserial PRIMARY KEY, shard int NOT NULL, out_trade_no text NOT NULL, event_id text NOT NULL,
  amount_fen int8 NOT NULL, currency text NOT NULL);
CREATE OR REPLACE FUNCTION credit_apply(req bigint, evt text, sh int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  PERFORM pg_advisory_xact_lock(4242, sh);
  IF EXISTS (SELECT 1 FROM credit_req WHERE id = req) THEN
    WITH q AS (DELETE FROM credit_req WHERE shard = sh RETURNING *),
    o AS (
      SELECT t.id, t.organization_id, t.amount_fen, t.currency, t.state, q.event_id, q.amount_fen AS req_amount,
             q.currency AS req_currency, t.out_trade_no
      FROM billing_topuporder t JOIN q ON q.out_trade_no = t.out_trade_no WHERE t.provider = 'sandbox'
      ORDER BY t.id FOR UPDATE OF t
    ), verdict AS (
      SELECT o.*, CASE WHEN o.amount_fen <> o.req_amount OR o.currency <> o.req_currency THEN 'rejected_mismatch'
        WHEN o.state = 'paid' THEN 'already_paid' ELSE 'credited' END AS outcome FROM o
    ), e AS (
      INSERT INTO billing_paymentevent (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)
      SELECT 'sandbox', event_id, id, 'paid', req_amount, req_currency, outcome, '{}'::jsonb, now() FROM verdict
      ON CONFLICT (provider, event_id) DO NOTHING RETURNING order_id, outcome
    ), paid AS (
      UPDATE billing_topuporder t SET state = 'paid', paid_at = now(), finished_at = now(), provider_trade_no = 'SBX'
      FROM e WHERE t.id = e.order_id AND e.outcome = 'credited'
      RETURNING t.id, t.organization_id, t.amount_fen, t.out_trade_no
    ), per_wallet AS (
      SELECT organization_id, sum(amount_fen) AS total FROM paid GROUP BY organization_id
    ), w AS (
      UPDATE billing_wallet b SET balance_fen = b.balance_fen + pw.total, updated_at = now()
      FROM per_wallet pw WHERE b.organization_id = pw.organization_id
      RETURNING b.id, b.organization_id, b.balance_fen
    ), l AS (
      INSERT INTO billing_ledgerentry (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)
      SELECT w.id, 'top_up_credit', paid.amount_fen,
             w.balance_fen - sum(paid.amount_fen) OVER (PARTITION BY paid.organization_id ORDER BY paid.id DESC) + paid.amount_fen,
             paid.id, 'top-up ' || paid.out_trade_no, now()
      FROM paid JOIN w ON w.organization_id = paid.organization_id
      RETURNING id
    )
    SELECT count(*) INTO r FROM l;
  END IF;
  SELECT outcome INTO r FROM billing_paymentevent WHERE provider = 'sandbox' AND event_id = evt;
  RETURN r;
END $$;
