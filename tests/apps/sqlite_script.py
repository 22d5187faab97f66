"""A plain script with no tracing code: one span-worthy sqlite query, then exit."""

import sqlite3

connection = sqlite3.connect(":memory:")
cursor = connection.cursor()
cursor.execute("CREATE TABLE users (email TEXT)")
cursor.execute("SELECT count(*) FROM users WHERE email = 'ann@example.com'")
print("rows", cursor.fetchone()[0], flush=True)
