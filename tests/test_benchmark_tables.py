"""The docs' generated benchmark tables are what bench/results/ recorded: a figure is never typed by hand."""

from __future__ import annotations

import json
import shutil

from bench import tables


def test_every_generated_table_in_the_docs_is_its_recorded_json():
    names = []
    for doc in tables.DOCS.glob("*.md"):
        text = doc.read_text()
        names += [m.group("name") for m in tables.BLOCK.finditer(text)]
        assert tables.rewritten(text) == text, f"{doc.name}: run uv run python -m bench.tables"
    assert "metrics_refresh" in names and all((tables.RESULTS_DIR / f"{name}.json").exists() for name in names)


def test_a_table_is_made_again_from_a_new_recording_with_its_date_and_commit(tmp_path, monkeypatch):
    shutil.copytree(tables.RESULTS_DIR, tmp_path / "results")
    path = tmp_path / "results" / "metrics_refresh.json"
    recorded = json.loads(path.read_text())
    recorded["result"]["results"][0]["full_over_hand"] = 0.987
    path.write_text(json.dumps({**recorded, "date": "2031-01-02", "commit": "abc1234"}))
    monkeypatch.setattr(tables, "RESULTS_DIR", tmp_path / "results")
    table = tables.markdown("metrics_refresh")
    assert "| 0.987 |" in table and table.count("| 2031-01-02 | abc1234 |") == len(recorded["result"]["results"])
    benchmarks = (tables.DOCS / "benchmarks.md").read_text()
    assert tables.rewritten(benchmarks) != benchmarks
