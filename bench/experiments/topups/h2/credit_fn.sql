SELECT nextval('oseq') AS n \gset
SELECT * FROM h2_credit_paid_event('sandbox', 'evt' || :n, 'T' || :n, 1000::int8, 'CNY', 'SBX', '{}'::jsonb, now());
