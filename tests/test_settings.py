"""Settings: errors name the variable, flag and value; flags win; the contract's defaults."""

from __future__ import annotations

import os

import pytest

from notify_core.settings import SettingsError, load_settings


def test_settings_errors_name_variable_flag_and_value(monkeypatch):
    monkeypatch.setenv("NOTIFY_HTTP_PORT", "eighty")
    monkeypatch.setenv("NOTIFY_KAFKA_BOOTSTRAP", "kafka1:9092,broken")
    monkeypatch.setenv("NOTIFY_REDIS_URL", "http://x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "NOTIFY_HTTP_PORT / --http-port = 'eighty'" in text
    assert "NOTIFY_KAFKA_BOOTSTRAP" in text and "'broken' is not host:port" in text
    assert "NOTIFY_REDIS_URL" in text and "redis://" in text


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("NOTIFY_HTTP_PORT", "9000")
    monkeypatch.setenv("NOTIFY_CORS_ORIGINS", "https://noc.example, https://ops.example")
    s = load_settings(http_port="9100")
    assert s.http_port == 9100
    assert s.cors_origins == ["https://noc.example", "https://ops.example"]


def test_short_jwt_secret_is_refused_without_echoing_it():
    with pytest.raises(SettingsError) as info:
        load_settings(jwt_secret="hunter2")
    assert "hunter2" not in str(info.value) and "32 bytes" in str(info.value)


def test_defaults_match_the_contract():
    env = {k: v for k, v in os.environ.items() if k.startswith("NOTIFY_")}
    assert not env, "tests must not run with NOTIFY_* set"
    s = load_settings()
    assert (s.http_host, s.http_port, str(s.config_dir)) == ("127.0.0.1", 8080, "config")
    assert s.kafka_bootstrap is None and s.redis_url is None and s.cors_origins == []
