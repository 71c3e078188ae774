-- PL/pgSQL version of _CREDIT_PAID_EVENT_SQL (same steps, same outcomes)
CREATE OR REPLACE FUNCTION h2_credit_paid_event(p_provider text, p_event_id text, p_out_trade_no text,
    p_amount_fen int8, p_currency text, p_provider_trade_no text, p_payload jsonb, p_now timestamptz,
    OUT outcome text, OUT organization_id int8, OUT credits int, OUT balance_after int8, OUT amount int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  o record; v text; w_id int8; l_id int8;
BEGIN
  SELECT t.id, t.organization_id, t.amount_fen, t.currency, t.state INTO o
  FROM billing_topuporder t WHERE t.out_trade_no = p_out_trade_no AND t.provider = p_provider FOR UPDATE;
  IF NOT FOUND THEN v := 'unknown_order';
  ELSIF o.amount_fen <> p_amount_fen OR o.currency <> p_currency THEN v := 'rejected_mismatch';
  ELSIF o.state = 'paid' THEN v := 'already_paid';
  ELSE v := 'credited'; END IF;
  organization_id := o.organization_id;
  credits := 0;
  INSERT INTO billing_paymentevent (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)
  VALUES (p_provider, p_event_id, o.id, 'paid', p_amount_fen, p_currency, v, p_payload, p_now)
  ON CONFLICT (provider, event_id) DO NOTHING
  RETURNING billing_paymentevent.outcome INTO outcome;
  IF outcome IS DISTINCT FROM 'credited' THEN RETURN; END IF;   -- replay (NULL) or not credited
  UPDATE billing_topuporder t SET state = 'paid', paid_at = p_now, finished_at = p_now, provider_trade_no = p_provider_trade_no
  WHERE t.id = o.id;
  INSERT INTO billing_wallet AS b (organization_id, balance_fen, created_at, updated_at)
  VALUES (o.organization_id, o.amount_fen, p_now, p_now)
  ON CONFLICT (organization_id) DO UPDATE SET balance_fen = b.balance_fen + EXCLUDED.balance_fen, updated_at = EXCLUDED.updated_at
  RETURNING b.id, b.balance_fen INTO w_id, balance_after;
  INSERT INTO billing_ledgerentry (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)
  VALUES (w_id, 'top_up_credit', o.amount_fen, balance_after, o.id, 'top-up ' || p_out_trade_no, p_now);
  credits := 1; amount := o.amount_fen;
END $$;
