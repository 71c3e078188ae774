\set w random(1, 1000)
UPDATE bench_bare_balance SET balance = balance + 100 WHERE id = :w;
