DROP INDEX billing_topup_pending_expiry;
ALTER TABLE billing_topuporder SET (fillfactor = 70);
VACUUM FULL billing_topuporder;
