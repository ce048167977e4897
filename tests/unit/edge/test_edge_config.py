"""Tests for edge.config: bundled defaults, the local override, caching and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import config


def _write(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(body))
    return path


def test_bundled_config_holds_the_documented_defaults() -> None:
    """GIVEN no override WHEN loading THEN the bundled file yields the documented defaults."""
    cfg = config.load()

    assert cfg.table == "edgeshift-routes"
    assert cfg.regions == ("us-east-1",)
    assert cfg.ttl_seconds == 5.0
    assert cfg.variant_header == "x-edgeshift-variant"
    assert cfg.endpoint_url is None
    assert cfg.deadline_seconds == 0.25
    assert cfg.hosts is None
    assert cfg.rule_header == "x-edgeshift-rule"
    assert cfg.max_stale_seconds == 300.0
    assert cfg.force_secret is None
    assert cfg.debug_header is None


def test_env_var_points_at_a_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN EDGESHIFT_EDGE_CONFIG WHEN loading THEN that file wins and absent keys default."""
    path = _write(
        tmp_path,
        {
            "table": "t",
            "regions": ["eu-west-1", "us-east-1"],
            "endpoint_url": "http://127.0.0.1:5000",
        },
    )
    monkeypatch.setenv(config.ENV_PATH, str(path))

    cfg = config.load()

    assert (cfg.table, cfg.regions, cfg.endpoint_url) == (
        "t",
        ("eu-west-1", "us-east-1"),
        "http://127.0.0.1:5000",
    )
    assert cfg.ttl_seconds == 5.0


def test_config_is_read_once_until_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a loaded config WHEN the file changes THEN only reset() makes load() see it."""
    path = _write(tmp_path, {"table": "first"})
    monkeypatch.setenv(config.ENV_PATH, str(path))
    first = config.load()
    _write(tmp_path, {"table": "second"})

    assert config.load() is first
    config.reset()
    assert config.load().table == "second"


def test_variant_header_is_lower_cased() -> None:
    """GIVEN a mixed-case header name WHEN parsing THEN it is stored the way CloudFront keys it."""
    assert config.parse({"variant_header": "X-Variant"}).variant_header == "x-variant"


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"table": ""},
        {"table": 3},
        {"regions": []},
        {"regions": "us-east-1"},
        {"regions": [1]},
        {"ttl_seconds": "5"},
        {"ttl_seconds": -1},
        {"ttl_seconds": True},
        {"deadline_seconds": None},
        {"endpoint_url": 5000},
    ],
)
def test_malformed_values_are_rejected(raw: object) -> None:
    """GIVEN a value of the wrong type WHEN parsing THEN ConfigError says so."""
    with pytest.raises(config.ConfigError):
        config.parse(raw)


def test_an_unknown_key_is_refused_by_name() -> None:
    """GIVEN a config with a key the edge does not read (a renamed ``timeout_seconds``) WHEN
    parsing THEN ConfigError names it, so its intended value cannot silently go unused."""
    with pytest.raises(config.ConfigError, match="unknown key 'timeout_seconds'"):
        config.parse({"table": "routes", "timeout_seconds": 2.0})


def test_the_bundled_config_parses() -> None:
    """GIVEN edge/config.json as shipped WHEN parsing it THEN every key is one the edge reads."""
    raw = json.loads((Path(config.__file__).parent / "config.json").read_text(encoding="utf-8"))
    assert config.parse(raw).table == raw["table"]


def test_unreadable_file_raises_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a missing or non-JSON file WHEN loading THEN ConfigError, not OSError, is raised."""
    monkeypatch.setenv(config.ENV_PATH, str(tmp_path / "missing.json"))
    with pytest.raises(config.ConfigError):
        config.load()
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv(config.ENV_PATH, str(tmp_path / "bad.json"))
    with pytest.raises(config.ConfigError):
        config.load()
