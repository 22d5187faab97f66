-- Alert history and delivery records are kept 90 days, lease claims a day past their expiry
-- (each process start adds a holder row, so old ones must go). Rules, channels, silences and
-- state are small and kept.
ALTER TABLE ${LOCAL tracehouse_alert_history} ${ON_CLUSTER} MODIFY TTL toDateTime(at) + INTERVAL 90 DAY;

ALTER TABLE ${LOCAL tracehouse_alert_notifications} ${ON_CLUSTER} MODIFY TTL toDateTime(at) + INTERVAL 90 DAY;

ALTER TABLE ${LOCAL tracehouse_alert_lease} ${ON_CLUSTER} MODIFY TTL toDateTime(expires_at) + INTERVAL 1 DAY;
