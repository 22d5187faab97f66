"""A real Celery app on the machine's RabbitMQ: one task doing an sqlite query. The queue name comes
from CELERY_QUEUE so that each test run has its own. No tracing code here."""

from __future__ import annotations

import os
import sqlite3

from celery import Celery

QUEUE = os.environ.get("CELERY_QUEUE", "tracehouse-tests")
app = Celery("tests.apps.celery_tasks", broker=os.environ.get("CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.task_default_queue = QUEUE
app.conf.worker_hijack_root_logger = False


@app.task(name="reserve")
def reserve(item_id: int) -> int:
    connection = sqlite3.connect(":memory:")
    cursor = connection.cursor()
    cursor.execute("SELECT ? + 100, 'reserved'", (item_id,))
    return int(cursor.fetchone()[0])


if __name__ == "__main__":
    reserve.apply_async((7,), queue=QUEUE)
    print("sent", flush=True)
