"""Alert rules, their evaluation and notifications.

`AlertService` (service.py) runs the evaluator in the query process; `router` (router.py) is the
`/api/v1/alerts/...` API. Rules, channels, state and history live in ClickHouse (schemas/200_alerts.sql).
"""
