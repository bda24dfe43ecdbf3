"""Settings: read from the environment once, coerced, and refused early when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError

UNSIGNED = {"ALLOW_UNSIGNED_MODELS": "true"}


def test_defaults_without_environment() -> None:
    settings = Settings.from_env(UNSIGNED)
    assert settings == Settings(allow_unsigned=True)
    assert settings.key is None
    assert settings.store_root == Path("binary")


def test_values_are_coerced() -> None:
    settings = Settings.from_env(
        {
            "MODEL_PATH": "/models/a.pkl",
            "MAX_ROWS": "7",
            "MAX_BODY_BYTES": "4096",
            "UNKNOWN_COLUMNS": "ignore",
            "LOG_LEVEL": "DEBUG",
            "DOWNLOAD_ACCEL_PREFIX": "/_artifacts/",
            **UNSIGNED,
        }
    )
    assert settings.model_path == Path("/models/a.pkl")
    assert settings.store_root == Path("/models")
    assert (settings.max_rows, settings.max_body_bytes) == (7, 4096)
    assert (settings.unknown_columns, settings.log_level) == ("ignore", "DEBUG")
    assert settings.download_accel_prefix == "/_artifacts/"


def test_secrets_come_from_variables_or_files(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-a-file\n")
    settings = Settings.from_env(
        {"MODEL_SIGNING_KEY_FILE": str(tmp_path / "key"), "ADMIN_TOKEN": "tok", "LOG_LEVEL": "info"}
    )
    assert settings.key == b"from-a-file"
    assert (settings.admin_token, settings.log_level) == ("tok", "INFO")
    assert "from-a-file" not in repr(settings)


def test_unsigned_models_need_an_explicit_choice() -> None:
    with pytest.raises(SettingsError, match="ALLOW_UNSIGNED_MODELS=true"):
        Settings.from_env({})
    with pytest.raises(SettingsError, match="MODEL_SIGNING_KEY_FILE: cannot read"):
        Settings.from_env({"MODEL_SIGNING_KEY_FILE": "/nonexistent/key"})


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"MAX_ROWS": "many"}, "MAX_ROWS: invalid literal"),
        ({"MAX_ROWS": "0"}, "MAX_ROWS must be at least 1"),
        ({"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES must be at least 1024"),
        ({"UNKNOWN_COLUMNS": "drop"}, "UNKNOWN_COLUMNS must be one of"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"MODEL_NAME": "my/model"}, "MODEL_NAME must be 1-128 of"),
        ({"MAX_QUEUED_ROWS": "-1"}, "MAX_QUEUED_ROWS must be 0"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env({**UNSIGNED, **environ})


def test_store_dir_and_boot_model() -> None:
    settings = Settings.from_env(
        {"MODEL_PATH": "/m/a.pkl", "STORE_DIR": "/var/store", "BOOT_MODEL": "model_path"} | UNSIGNED
    )
    assert settings.store_root == Path("/var/store")
    assert settings.boot_model == "model_path"
    assert Settings.from_env({"STORE_DIR": "", **UNSIGNED}).store_root == Path("binary")
    with pytest.raises(SettingsError, match="BOOT_MODEL must be one of"):
        Settings.from_env({"BOOT_MODEL": "newest", **UNSIGNED})


def test_the_model_name_defaults_to_the_artifacts_stem() -> None:
    assert Settings.from_env(UNSIGNED).served_name == "pipeline"
    named = Settings.from_env({**UNSIGNED, "MODEL_PATH": "/m/credit.pkl"})
    assert named.served_name == "credit"
    assert Settings.from_env({**UNSIGNED, "MODEL_NAME": "risk-v2"}).served_name == "risk-v2"
