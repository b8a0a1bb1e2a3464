"""The baseline: a bare Flask app with one route answering a small JSON object.

Served by the same gunicorn.conf.py as the service (`gunicorn -c gunicorn.conf.py
bench.bare_app:app`), it measures what gunicorn + Flask cost with no work behind them.
It reads the JSON body, as any intake must, and answers 201 like the real intake.
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/api/v1/comments", methods=["GET", "POST"])
def comments():
    body = request.get_json(silent=True) or {}
    response = jsonify({"id": 1, "status": "pending", "fields": len(body)})
    response.status_code = 201 if request.method == "POST" else 200
    return response
