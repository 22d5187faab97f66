-- Alert rules, notification channels, silences, per-series state, transition history, delivery log
-- and the evaluator lease. Configuration tables are versioned rows in ReplacingMergeTree tables
-- (the row with the latest `version` per key wins: readers take it with LIMIT 1 BY, so the answer does not depend on
-- whether a merge has happened yet). On a cluster every alert table lives on the first shard
-- (sharding key 0), so each replica reads the same rules, state and lease.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_rules} ${ON_CLUSTER} (
    id String,
    name String,
    body String CODEC(ZSTD(1)),
    source LowCardinality(String),
    deleted UInt8,
    version UInt64,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ${ENGINE ReplacingMergeTree}
ORDER BY id;

${DISTRIBUTED tracehouse_alert_rules 0};

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_channels} ${ON_CLUSTER} (
    name String,
    body String CODEC(ZSTD(1)),
    source LowCardinality(String),
    deleted UInt8,
    version UInt64,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ${ENGINE ReplacingMergeTree}
ORDER BY name;

${DISTRIBUTED tracehouse_alert_channels 0};

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_silences} ${ON_CLUSTER} (
    rule_id String,
    until DateTime64(3, 'UTC'),
    comment String,
    version UInt64,
    created_at DateTime64(3, 'UTC')
) ENGINE = ${ENGINE ReplacingMergeTree}
ORDER BY rule_id;

${DISTRIBUTED tracehouse_alert_silences 0};

-- One row per (rule, series): the state machine's memory between evaluations.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_state} ${ON_CLUSTER} (
    rule_id String,
    series String,
    labels Map(String, String),
    state LowCardinality(String),
    value Nullable(Float64),
    active_since_ms Int64,
    fired_at_ms Int64,
    resolved_at_ms Int64,
    last_notified_ms Int64,
    evaluated_at_ms Int64,
    version UInt64
) ENGINE = ${ENGINE ReplacingMergeTree}
ORDER BY (rule_id, series);

${DISTRIBUTED tracehouse_alert_state 0};

-- Every state transition, append-only.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_history} ${ON_CLUSTER} (
    at DateTime64(3, 'UTC'),
    rule_id String,
    rule_name String,
    series String,
    labels Map(String, String),
    from_state LowCardinality(String),
    to_state LowCardinality(String),
    value Nullable(Float64),
    threshold Float64,
    severity LowCardinality(String),
    silenced UInt8,
    replica String
) ENGINE = ${ENGINE MergeTree}
ORDER BY (rule_id, at);

${DISTRIBUTED tracehouse_alert_history 0};

-- Every notification attempt's outcome, one row per (delivery, channel).
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_notifications} ${ON_CLUSTER} (
    at DateTime64(3, 'UTC'),
    delivery_id String,
    rule_id String,
    rule_name String,
    series String,
    kind LowCardinality(String),
    channel String,
    ok UInt8,
    attempts UInt16,
    status_code UInt16,
    error String
) ENGINE = ${ENGINE MergeTree}
ORDER BY (at, rule_id);

${DISTRIBUTED tracehouse_alert_notifications 0};

-- The evaluator lease: each replica keeps its latest claim (key: name, holder), the claim with the
-- highest version, then the earliest claimed_at, then the smallest holder, is the lease.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_alert_lease} ${ON_CLUSTER} (
    name String,
    holder String,
    expires_at DateTime64(3, 'UTC'),
    version UInt64,
    claimed_at DateTime64(3, 'UTC')
) ENGINE = ${ENGINE ReplacingMergeTree}
ORDER BY (name, holder);

${DISTRIBUTED tracehouse_alert_lease 0};
