"""A plain script with no tracing code: one span-worthy sqlite query, then exit
(or, with --wait, wait for a signal, as a process that never handles SIGTERM)."""

import signal
import sqlite3
import sys

connection = sqlite3.connect(":memory:")
cursor = connection.cursor()
cursor.execute("CREATE TABLE users (email TEXT)")
cursor.execute("SELECT count(*) FROM users WHERE email = 'ann@example.com'")
print("rows", cursor.fetchone()[0], flush=True)
if "--wait" in sys.argv:
    while True:
        signal.pause()
