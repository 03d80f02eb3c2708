"""reverie: sleep-time compute for data teams."""

import os

# The ephemeral Prefect API's telemetry heartbeat races the first flow run for SQLite and logs a
# "database is locked" traceback; reverie sends no telemetry of its own and turns it off unless asked.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
