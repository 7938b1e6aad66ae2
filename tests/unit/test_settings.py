import pytest

from lakebox.errors import SettingsError
from lakebox.settings import Settings, default_settings_text, load_settings


def test_defaults_without_a_file(tmp_path):
    settings = load_settings(tmp_path)
    assert settings.storage.root == "tables"
    assert settings.server.port == 8080
    assert settings.mlflow.lineage is True


def test_file_values_and_overrides(tmp_path):
    (tmp_path / "lakebox.toml").write_text("[server]\nport = 9000\n[engine]\nthreads = 2\n")
    settings = load_settings(tmp_path, {"engine": {"name": "spark"}})
    assert settings.server.port == 9000
    assert settings.engine.threads == 2
    assert settings.engine.name == "spark"


def test_unknown_key_lists_valid_keys(tmp_path):
    (tmp_path / "lakebox.toml").write_text("[server]\nprot = 9000\n")
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    message = str(info.value)
    assert "unknown key 'server.prot'" in message
    assert "Did you mean 'port'?" in message
    assert "host, port, token, workers" in message


def test_unknown_section_lists_valid_sections(tmp_path):
    (tmp_path / "lakebox.toml").write_text("[severs]\nport = 1\n")
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    assert "Valid keys: " + ", ".join(sorted(Settings.model_fields)) in str(info.value)


def test_bad_value_names_the_key(tmp_path):
    (tmp_path / "lakebox.toml").write_text('[engine]\nname = "flink"\n')
    with pytest.raises(SettingsError, match="engine.name"):
        load_settings(tmp_path)


def test_invalid_toml_says_how_to_fix(tmp_path):
    (tmp_path / "lakebox.toml").write_text("[server\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(tmp_path)


def test_default_text_is_valid_and_documents_every_key(tmp_path):
    text = default_settings_text()
    (tmp_path / "lakebox.toml").write_text(text)
    assert load_settings(tmp_path) == Settings()
    for section, field in Settings.model_fields.items():
        assert f"[{section}]" in text
        for key in field.annotation.model_fields:
            assert f"# {key} = " in text
