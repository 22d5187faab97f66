"""TraceHouse: distributed tracing and full-stack monitoring on ClickHouse.

Kept import-light on purpose: `import tracehouse.agents` runs this file inside users' services.
"""

__version__ = "0.1.0"
