SELECT nextval('oseq') AS n \gset
INSERT INTO credit_req (out_trade_no, event_id, amount_fen, currency) VALUES ('T' || :n, 'evt' || :n, 1000, 'CNY') RETURNING id AS rid \gset
SELECT credit_apply(:rid, 'evt' || :n);
