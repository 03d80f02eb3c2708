"""reverie.toml: defaults, environment overrides, errors that name the file and the field."""

import pytest

from reverie.config import ConfigError, check_suites, load_settings

pytestmark = pytest.mark.without_prefect


def test_defaults_without_a_file_use_the_embedded_model(tmp_path):
    settings = load_settings(tmp_path)
    assert settings.llm.embedded and settings.warehouse.path == tmp_path / ".reverie" / "warehouse.duckdb"


def test_aliases_name_a_members_other_names(tmp_path):
    (tmp_path / "reverie.toml").write_text('[aliases]\nGB = ["UK", " Britain "]\nemail = ["newsletter"]\n')
    assert load_settings(tmp_path).aliases == {"GB": ("UK", "Britain"), "email": ("newsletter",)}


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    (tmp_path / "reverie.toml").write_text('[llm]\nbase_url = "http://a/v1"\nmodel = "m1"\n')
    monkeypatch.setenv("OPENAI_BASE_URL", "http://b/v1")
    monkeypatch.setenv("REVERIE_MODEL", "m2")
    settings = load_settings(tmp_path)
    assert (settings.llm.base_url, settings.llm.model, settings.llm.embedded) == ("http://b/v1", "m2", False)


@pytest.mark.parametrize("text, message", [
    ('[llm]\nbase_ur = "x"\n', r"\[llm\]: unknown field 'base_ur' — did you mean 'base_url'\?$"),
    ('[detect]\nmin_abs_z = "high"\n', r"\[detect\] min_abs_z: expected a number, got 'high'$"),
    ('[paths]\nlandng = "x"\n', r"\[paths\]: unknown field 'landng' — did you mean 'landing'\?$"),
    ('[paths]\nlanding = 5\n', r"\[paths\] landing: expected text, got 5$"),
    ('[llm\n', r"reverie.toml"),
    ('[project]\nlookback_days = "two"\n', r"\[project\] lookback_days: expected an integer, got 'two'$"),
    ('[project]\ncompleteness_grace_minutes = 7.5\n', r"\[project\] completeness_grace_minutes: expected an integer, got 7.5$"),
    ('[project]\nname = 3\n', r"\[project\] name: expected text, got 3$"),
    ('[project]\nnmae = "shop"\n', r"\[project\]: unknown field 'nmae' — did you mean 'name'\?$"),
    ('[detcet]\nmin_abs_z = 3.0\n', r"unknown section 'detcet' — did you mean 'detect'\?$"),
    ('top_k = 3\n', r"unknown section 'top_k' — did you mean \[llm\] top_k\?$"),
    ('[bogus]\n', r"unknown section 'bogus' \(known: project, paths, lake, sources, llm, detect, memory, deliver, aliases\)$"),
    ('[sources.events]\nname = "drop table x"\npath = "a/*.csv"\nformat = "csv"\n',
     r"\[sources.events\] name: a source is named by its table"),
    ('[sources.events]\npath = "a/*.csv"\nformat = "csv"\nbogus = 1\n',
     r"\[sources.events\]: unknown field 'bogus' \(known for format csv: format, time_column, suite, timezone, path, "),
    ('[llm]\nmax_turns = -1\n', r"\[llm\] max_turns = -1: must be at least 1"),
    ('[llm]\ntop_k = 2.5\n', r"\[llm\] top_k: expected an integer, got 2.5$"),
    ('[llm]\nanalysts = true\n', r"\[llm\] analysts: expected an integer, got True$"),
    ('[llm]\ntimeout_seconds = 0\n', r"\[llm\] timeout_seconds = 0.0: must be at least 0.1"),
    ('[detect]\nmin_abs_z = -4.0\n', r"\[detect\] min_abs_z = -4.0: must be at least 0"),
    ('[detect]\nmin_abs_z = nan\n', r"\[detect\] min_abs_z: expected a finite number, got nan$"),
    ('[detect]\nconcentration_share = 1.5\n', r"concentration_share = 1.5: must be at least 0 and at most 1"),
    ('[memory]\nttl_days = 0\n', r"\[memory\] ttl_days = 0: must be at least 1"),
    ('[project]\nlookback_days = -2\n', r"\[project\] lookback_days = -2: must be at least 0"),
    ('[aliases]\nGB = "UK"\n', r"\[aliases\] GB must be a list of names"),
    ('[aliases]\nGB = ["UK", ""]\n', r"\[aliases\] GB must be a list of names"),
])
@pytest.mark.reliability("bad_input")
def test_bad_config_names_the_file_and_the_field(tmp_path, text, message):
    (tmp_path / "reverie.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "reverie.toml") in str(info.value)


@pytest.mark.reliability("bad_input")
def test_a_suite_is_looked_up_among_the_declared_ones_before_data_moves(tmp_path):
    (tmp_path / "reverie.toml").write_text('[sources.events]\npath = "a/*.csv"\nformat = "csv"\nsuite = "evnts"\n')
    with pytest.raises(ConfigError, match=r"\[sources.events\] suite: 'evnts' is not declared in .*quality/\*\.yml "
                                          r"\(declared: none\)"):
        check_suites(load_settings(tmp_path))
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "shop.yml").write_text("suites:\n  events: []\n  orders: []\n")
    with pytest.raises(ConfigError) as info:
        check_suites(load_settings(tmp_path))
    assert str(info.value) == (f"{tmp_path / 'reverie.toml'}: [sources.events] suite: 'evnts' is not declared in "
                               f"{tmp_path / 'quality'}/*.yml (declared: events, orders)")
    (tmp_path / "reverie.toml").write_text('[sources.events]\npath = "a/*.csv"\nformat = "csv"\nsuite = "events"\n')
    assert check_suites(load_settings(tmp_path)).sources["events"].suite == "events"
    # a quality file that is not YAML is the quality gate's to name (its batches then go in unchecked, and say so)
    (tmp_path / "quality" / "broken.yml").write_text("suites: [\n")
    (tmp_path / "reverie.toml").write_text('[sources.events]\npath = "a/*.csv"\nformat = "csv"\nsuite = "evnts"\n')
    assert check_suites(load_settings(tmp_path)).sources["events"].suite == "evnts"
