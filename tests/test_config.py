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
    ('[bogus]\n', r"unknown section 'bogus' \(known: project, paths, lake, sources, llm, detect, memory, deliver, aliases, dbt\)$"),
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
    ('[detect]\ngoal_tolerance = "5%"\n', r"\[detect\] goal_tolerance: expected a number or true or false, got '5%'$"),
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


def _refused(folder, text: str) -> str:
    """The ConfigError's message for a reverie.toml of `text`, the folder's path taken out."""
    (folder / "reverie.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(folder)
    return str(info.value).replace(f"{folder}/", "")


@pytest.mark.reliability("bad_input")
def test_an_unknown_field_names_its_section_and_the_field_meant(tmp_path):
    assert _refused(tmp_path, '[sources.orders]\npath = "a/*.parquet"\ntime_colum = "at"\n') == (
        "reverie.toml: [sources.orders]: unknown field 'time_colum' — did you mean 'time_column'?")
    assert _refused(tmp_path, '[deliver.webhook]\nurl = "x"\n') == (
        "reverie.toml: [deliver.webhook]: unknown field 'url' — did you mean 'url_env'?")


@pytest.mark.reliability("bad_input")
def test_an_unknown_section_names_the_section_meant(tmp_path):
    assert _refused(tmp_path, '[memroy]\nttl_days = 30\n') == (
        "reverie.toml: unknown section 'memroy' — did you mean 'memory'?")


@pytest.mark.reliability("bad_input")
def test_a_wrong_type_names_the_file_the_section_the_field_and_the_value(tmp_path):
    assert _refused(tmp_path, '[llm]\nmax_tokens = "lots"\n') == (
        "reverie.toml: [llm] max_tokens: expected an integer, got 'lots'")


@pytest.mark.reliability("bad_input")
def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    message = _refused(tmp_path, '[llm]\nmax_tokens = "lots"\ntop_k = 0\n[detect]\nmin_abs_z = "high"\n'
                                 '[sources.orders]\npath = "a/*.csv"\nformat = "csv"\nheader = "yes"\ntime_colum = "at"\n'
                                 '[memroy]\n')
    assert message.splitlines() == [
        "reverie.toml: unknown section 'memroy' — did you mean 'memory'?",
        "reverie.toml: [llm] max_tokens: expected an integer, got 'lots'",
        "reverie.toml: [llm] top_k = 0: must be at least 1",
        "reverie.toml: [detect] min_abs_z: expected a number, got 'high'",
        "reverie.toml: [sources.orders] header: expected true or false, got 'yes'",
        "reverie.toml: [sources.orders]: unknown field 'time_colum' — did you mean 'time_column'?",
    ]
    assert not any(boilerplate in message for boilerplate in ("pydantic", "input_type", "validation error", "Traceback"))


@pytest.mark.reliability("secret")
@pytest.mark.parametrize("text", ['[llm]\napi_key = "sk-not-shown-1234"\nmax_tokens = "lots"\nmax_turns = 0\n',
                                  '[llm]\napi_key = ["sk-not-shown-1234"]\n',
                                  '[llm]\napi_key = "sk-not-shown-1234"\nbogus = 1\n'])
def test_a_secret_is_never_in_an_error_nor_in_the_settings_repr(tmp_path, monkeypatch, text):
    message = _refused(tmp_path, text)
    assert "reverie.toml: [llm]" in message and "sk-not-shown-1234" not in message
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment")
    (tmp_path / "reverie.toml").write_text("")
    settings = load_settings(tmp_path)
    assert settings.llm.api_key == "sk-from-environment" and "sk-from-environment" not in repr(settings)
