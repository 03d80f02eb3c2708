"""Benchmarks, run from the checkout as `uv run python -m bench.<name>`: each prints a table, or JSON with `--json`."""
