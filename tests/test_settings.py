"""Configuration errors name the field, at start-up."""

import pytest

from gateway.errors import ConfigError
from gateway.settings import hash_key, parse_settings

GOOD = """
[gateway]
idempotency_hours = 48

[[workspaces]]
id = "acme"

[[workspaces.connections]]
id = "cw-main"
vendor = "connectwise"
base_url = "https://na.myconnectwise.net/v4_6_release/apis/3.0"
settings = { company_id = "acme" }
secrets = { public_key = "T_CW_PUB" }

[[workspaces.api_keys]]
name = "dispatch"
sha256 = "%s"
scopes = ["tickets:read"]
""" % hash_key("k")


def test_a_good_config_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CW_PUB", "x")
    settings = parse_settings(GOOD)
    assert settings.gateway.idempotency_hours == 48
    assert settings.workspaces[0].connections[0].id == "cw-main"


def test_a_missing_secret_variable_names_the_field_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_CW_PUB", raising=False)
    with pytest.raises(ConfigError, match=r"workspaces\[0\]\.connections\[0\]\.secrets\.public_key: environment variable T_CW_PUB"):
        parse_settings(GOOD)


def test_a_wrong_type_names_the_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.gateway\.idempotency_hours"):
        parse_settings('[gateway]\nidempotency_hours = "soon"\n')


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match="colour"):
        parse_settings('[[workspaces]]\nid = "a"\ncolour = "red"\n')


def test_a_bad_api_key_hash_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"api_keys\[0\]\.sha256"):
        parse_settings('[[workspaces]]\nid = "a"\napi_keys = [ { name = "x", sha256 = "abc", scopes = [] } ]\n')


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ConfigError, match="scopes"):
        parse_settings('[[workspaces]]\nid = "a"\napi_keys = [ { name = "x", sha256 = "%s", scopes = ["root"] } ]\n' % hash_key("k"))


def test_not_toml_says_so() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_settings("[[workspaces")


def test_duplicate_connection_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[[workspaces]]\nid = "a"\nconnections = [ { id = "c", vendor = "v", base_url = "http://x" }, { id = "c", vendor = "v", base_url = "http://y" } ]\n'
    with pytest.raises(ConfigError, match="used twice"):
        parse_settings(text)
