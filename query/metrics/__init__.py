"""Metrics API: metric catalogue, time-series queries with counter rates, hosts, middleware
instances, and the correlation of a service's latency with the host and middleware metrics
around it. Times are RFC 3339 or Unix milliseconds (`start`, `end`); `step` is `30s`, `5m`, `1h`
or seconds. Every series is aligned on step starts (multiples of the step since the epoch) and
has one value per timestamp, `null` where the step has no data.

GET /api/v1/metrics?start&end&service&host&prefix              (default: last 24 h)
    {start, end, metrics: [{name, type: gauge|counter|updowncounter|histogram|summary|...,
                            unit, description, services: [..], hosts: [..], points, last_seen}]}

GET /api/v1/metrics/query?name&start&end&step&agg&attr=k:v&group_by=k   (default: last hour)
    agg: avg|max|min|sum|rate|p99; default rate for counters, p99 for histograms, avg otherwise.
    attr matches point or resource attributes (service.name: the ServiceName column), repeatable.
    {name, type, unit (with rate: per second), agg, step_s, start, end,
     series: [{labels: {group_by key: value}, timestamps: [..], values: [..]}]}

GET /api/v1/hosts?start&end                                     (default: last 15 minutes)
    {start, end, hosts: [{host, last_seen, cpu_utilization (0..1), load_average_1m,
      memory_utilization (0..1), memory_used_bytes, memory_limit_bytes, filesystem_utilization_max,
      disk_io_bytes_per_s, network_io_bytes_per_s, services: [{service, instances, last_seen}]}]}

GET /api/v1/middleware?start&end                                (default: last 15 minutes)
    {start, end, instances: [{name, system, address, port, up, availability (0..1), last_seen}]}

GET /api/v1/services/{service}/correlated?start&end&step&limit  (default: last hour, ~60 steps)
    {service, start, end, step_s, timestamps,
     latency: {p99_ms, p50_ms, error_rate, calls},
     hosts: [host.name of its instances],
     dependencies: [{node, system, address, port, peer_service, db_name, calls, middleware}],
     series: [{id, source: host|process|middleware, entity, metric, labels, unit, agg: avg|rate,
               values, spearman, pearson, score}]}   ranked by score = max(|spearman|, |pearson|)
"""
