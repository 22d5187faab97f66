"""A real Flask front end for the agent tests: `/checkout/<item>` calls the back end over HTTP.

Run as `python -m tests.apps.flask_front` (PORT, BACKEND_URL from the environment) or under gunicorn
as `tests.apps.flask_front:app`. It contains no tracing code: the agent adds all of it.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/ping")
def ping() -> dict[str, object]:
    return {"ok": True, "pid": os.getpid()}


@app.get("/checkout/<int:item_id>")
def checkout(item_id: int) -> Response:
    backend = os.environ["BACKEND_URL"].rstrip("/")
    response = requests.get(f"{backend}/inventory/{item_id}", timeout=10)
    response.raise_for_status()
    return jsonify({"item": item_id, "inventory": response.json(), "pid": os.getpid()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
