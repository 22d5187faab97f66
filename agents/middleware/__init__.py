"""Middleware receivers: scrape Redis, MySQL/MariaDB, PostgreSQL, Nginx and RabbitMQ and send what
they report as OTLP metrics, one `service.name` per middleware instance.

Run with `tracehouse-agent middleware --config middleware.toml`.
"""
