"""reverie.toml: defaults, environment overrides, errors that name the file and the field."""

import pytest

from reverie.config import ConfigError, load_settings


def test_defaults_without_a_file_use_the_embedded_model(tmp_path):
    settings = load_settings(tmp_path)
    assert settings.llm.embedded and settings.warehouse == tmp_path / ".reverie" / "warehouse.duckdb"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    (tmp_path / "reverie.toml").write_text('[llm]\nbase_url = "http://a/v1"\nmodel = "m1"\n')
    monkeypatch.setenv("OPENAI_BASE_URL", "http://b/v1")
    monkeypatch.setenv("REVERIE_MODEL", "m2")
    settings = load_settings(tmp_path)
    assert (settings.llm.base_url, settings.llm.model, settings.llm.embedded) == ("http://b/v1", "m2", False)


@pytest.mark.parametrize("text, message", [
    ('[llm]\nbase_ur = "x"\n', r"unknown field\(s\) in \[llm\]: base_ur"),
    ('[detect]\nmin_abs_z = "high"\n', r"\[detect\] min_abs_z = 'high' is not a float"),
    ('[paths]\nlandng = "x"\n', r"unknown field\(s\) in \[paths\]: landng"),
    ('[llm\n', r"reverie.toml"),
])
def test_bad_config_names_the_file_and_the_field(tmp_path, text, message):
    (tmp_path / "reverie.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "reverie.toml") in str(info.value)
