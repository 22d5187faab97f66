"""Metrics API: metric catalogue, time-series queries with counter rates, hosts, and the
correlation of a service's latency with the host and middleware metrics around it."""
