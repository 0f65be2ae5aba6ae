"""Settings are resolved once, with clear errors naming the key and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from moesif_core.settings import SPECS, Settings, SettingsError, mask_application_id


def resolve(settings: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kw: Any) -> Settings:
    return Settings.resolve(settings, environ=env or {}, **kw)


def test_defaults_match_the_incumbents() -> None:
    s = resolve({"APPLICATION_ID": "app"})
    assert s.base_uri == "https://api.moesif.net"
    assert (s.log_body, s.batch_size, s.event_worker_count, s.event_queue_size) == (True, 100, 2, 1_000_000)
    assert s.authorization_header_name == ("authorization",)
    assert s.authorization_user_id_field == "sub"
    assert s.mask_default_credentials is True


def test_missing_application_id_says_how_to_set_it() -> None:
    with pytest.raises(SettingsError, match="APPLICATION_ID is missing.*MOESIF_APPLICATION_ID"):
        resolve({})
    with pytest.raises(SettingsError, match="APPLICATION_ID"):
        resolve({"APPLICATION_ID": "   "})


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(SettingsError, match=r"unknown Moesif setting 'APPLICATON_ID'.*Did you mean 'APPLICATION_ID'"):
        resolve({"APPLICATON_ID": "x"})
    with pytest.raises(SettingsError, match="Did you mean 'IDENTIFY_USER'"):
        resolve({"APPLICATION_ID": "x", "IDENTIFY_USERS": lambda *a: None})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("BATCH_SIZE", "many", "BATCH_SIZE .* must be a whole number"),
        ("BATCH_SIZE", 0, "BATCH_SIZE .* at least 1"),
        ("LOG_BODY", "maybe", "LOG_BODY .* True or False"),
        ("IDENTIFY_USER", "not callable", "IDENTIFY_USER .* must be a callable"),
        ("EVENT_BATCH_TIMEOUT", [1], "EVENT_BATCH_TIMEOUT .* number"),
        ("REQUEST_HEADER_MASKS", [1, 2], "REQUEST_HEADER_MASKS .* list of strings"),
        ("BASE_URI", "ftp://x", "BASE_URI must start with http"),
    ],
)
def test_wrong_types_name_the_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        resolve({"APPLICATION_ID": "app", key: value})


def test_environment_variables_fill_what_the_dict_does_not() -> None:
    env = {
        "MOESIF_APPLICATION_ID": "from-env",
        "MOESIF_BATCH_SIZE": "25",
        "MOESIF_LOG_BODY": "false",
        "MOESIF_BASE_URI": "http://127.0.0.1:8787/",
        "MOESIF_REQUEST_HEADER_MASKS": "x-secret, x-other",
        "MOESIF_SOMETHING_ELSE": "ignored",
    }
    s = resolve({"BATCH_SIZE": 7}, env=env)
    assert s.application_id == "from-env"
    assert s.batch_size == 7  # the explicit dict wins
    assert s.log_body is False
    assert s.base_uri == "http://127.0.0.1:8787"
    assert s.request_header_masks == ("x-secret", "x-other")


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="environment variable MOESIF_BATCH_SIZE"):
        resolve({"APPLICATION_ID": "a"}, env={"MOESIF_BATCH_SIZE": "ten"})


def test_framework_config_sits_between_dict_and_environment() -> None:
    s = resolve(
        {"LOG_BODY": True},
        env={"MOESIF_API_VERSION": "env"},
        framework_config={"APPLICATION_ID": "fw", "LOG_BODY": "false", "API_VERSION": "1.2"},
        framework_source="app.config",
    )
    assert (s.application_id, s.log_body, s.api_version) == ("fw", True, "1.2")
    with pytest.raises(SettingsError, match=r"from app.config"):
        resolve(framework_config={"APPLICATION_ID": "fw", "BATCH_SIZE": "x"}, framework_source="app.config")


def test_legacy_base_url_key_and_lowercase_keys_are_accepted() -> None:
    s = resolve({"application_id": "a", "LOCAL_MOESIF_BASEURL": "http://127.0.0.1:1"})
    assert s.base_uri == "http://127.0.0.1:1"


def test_authorization_header_name_accepts_comma_separated_string() -> None:
    s = resolve({"APPLICATION_ID": "a", "AUTHORIZATION_HEADER_NAME": "X-Api-Token, Authorization"})
    assert s.authorization_header_name == ("X-Api-Token", "Authorization")


def test_every_spec_key_resolves_to_an_attribute() -> None:
    s = resolve({"APPLICATION_ID": "a"})
    for spec in SPECS:
        assert hasattr(s, spec.attribute), spec.key


def test_repr_and_log_form_never_show_the_whole_application_id() -> None:
    secret = "eyJhcHAiOiIxMjM0NTY3ODkwIn0.long-app-id"
    s = resolve({"APPLICATION_ID": secret})
    assert secret not in repr(s)
    assert mask_application_id(secret) == "eyJh...p-id"
    assert mask_application_id("short") == "*****"


def test_non_dict_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="must be a dict"):
        Settings.resolve("APPLICATION_ID=x")  # type: ignore[arg-type]
