SELECT nextval('oseq') AS n \gset
\set sh :n % 4
INSERT INTO credit_req (shard, out_trade_no, event_id, amount_fen, currency) VALUES (:sh, 'T' || :n, 'evt' || :n, 1000, 'CNY') RETURNING id AS rid \gset
SELECT credit_apply(:rid, 'evt' || :n, :sh);
