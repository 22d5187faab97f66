SELECT count() AS spans, toUnixTimestamp64Milli(min(Timestamp)) AS oldest_ms FROM otel_traces
