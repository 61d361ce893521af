"""Settings from an explicit environ dict: credentials, base URL, and secrets kept out of reprs."""

from __future__ import annotations

import pytest

from toolkit.config import (
    DEFAULT_BASE_URL,
    DOCS_DIR,
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    Settings,
    load_settings,
)
from toolkit.errors import ConfigurationError

KEY = "cfg_SECRET_key_7f3a"
TOKEN = "cfg_SECRET_token_9b1c"


def test_api_key_and_default_base_url() -> None:
    settings = load_settings({"LEVER_API_KEY": KEY})
    assert settings.api_key == KEY
    assert settings.access_token is None
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.lever.co/v1"
    assert settings.secrets == (KEY,)


def test_access_token_and_custom_base_url_without_trailing_slash() -> None:
    settings = load_settings(
        {"LEVER_ACCESS_TOKEN": f"  {TOKEN} ", "LEVER_BASE_URL": " http://127.0.0.1:8123/v1/ "}
    )
    assert settings.api_key is None
    assert settings.access_token == TOKEN
    assert settings.base_url == "http://127.0.0.1:8123/v1"
    assert settings.secrets == (TOKEN,)


def test_both_credentials_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="both LEVER_API_KEY and LEVER_ACCESS_TOKEN") as e:
        load_settings({"LEVER_API_KEY": KEY, "LEVER_ACCESS_TOKEN": TOKEN})
    assert KEY not in str(e.value) and TOKEN not in str(e.value)


@pytest.mark.parametrize("environ", [{}, {"LEVER_API_KEY": "   "}, {"LEVER_ACCESS_TOKEN": ""}])
def test_a_missing_credential_names_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="LEVER_API_KEY"):
        load_settings(environ)


@pytest.mark.parametrize("url", ["api.lever.co/v1", "ftp://api.lever.co/v1", "https://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="LEVER_BASE_URL"):
        load_settings({"LEVER_API_KEY": KEY, "LEVER_BASE_URL": url})


def test_a_base_url_carrying_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as e:
        load_settings({"LEVER_API_KEY": KEY, "LEVER_BASE_URL": f"https://{KEY}:@api.lever.co/v1"})
    assert KEY not in str(e.value)
    assert "LEVER_BASE_URL" in str(e.value)


def test_settings_repr_and_str_hide_the_secrets() -> None:
    for settings in (
        load_settings({"LEVER_API_KEY": KEY}),
        Settings(access_token=TOKEN),
    ):
        for text in (repr(settings), str(settings)):
            assert KEY not in text and TOKEN not in text
            assert "api.lever.co" in text


def test_none_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVER_API_KEY", KEY)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("LEVER_BASE_URL", "https://api.sandbox.lever.co/v1")
    settings = load_settings()
    assert settings.api_key == KEY
    assert settings.base_url == "https://api.sandbox.lever.co/v1"


def test_project_paths() -> None:
    assert (PROJECT_ROOT / "toolkit" / "config.py").is_file()
    assert NOTEBOOKS_DIR == PROJECT_ROOT / "notebooks"
    assert DOCS_DIR == PROJECT_ROOT / "docs"
