"""MoesifFlask as a Flask extension: init styles, settings from app.config, double init, lifecycle."""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest

from flask_moesif import MoesifFlask, SettingsError
from moesif_core.wsgi import MoesifMiddleware

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def identify_from_header(app: Any, environ: Any, headers: Any = None) -> str:
    return "from-import-string"


def make_app() -> flask.Flask:
    app = flask.Flask("factory")

    @app.get("/ping")
    def ping() -> Any:
        return {"pong": True}

    return app


def test_direct_init_wraps_wsgi_app_and_registers_the_extension(agent: Any) -> None:
    app = make_app()
    moesif = MoesifFlask(app, SETTINGS, agent=agent)
    assert app.extensions["moesif"] is moesif
    assert isinstance(app.wsgi_app, MoesifMiddleware)
    assert moesif.middleware is app.wsgi_app
    assert app.test_client().get("/ping").json == {"pong": True}
    assert [r.path for r in agent.records] == ["/ping"]


def test_init_app_with_an_app_factory_reads_app_config(agent: Any) -> None:
    moesif = MoesifFlask(agent=agent)

    def create_app() -> flask.Flask:
        app = make_app()
        app.config.update(
            MOESIF_APPLICATION_ID="from-config",
            MOESIF_BASE_URI="http://127.0.0.1:9",
            MOESIF_LOG_BODY=False,
            MOESIF_API_VERSION="2.1",
            MOESIF_IDENTIFY_USER=f"{__name__}:identify_from_header",
        )
        moesif.init_app(app)
        return app

    app = create_app()
    settings = moesif.middleware_for(app).settings
    assert settings.application_id == "from-config"
    assert settings.log_body is False
    assert settings.api_version == "2.1"
    assert settings.identify_user is identify_from_header
    app.test_client().get("/ping").close()  # as a server does once the body went out
    [record] = agent.records
    assert record.user_id == "from-import-string"
    assert record.response_body is None  # LOG_BODY=False from app.config


def test_settings_dict_wins_over_app_config_which_wins_over_environment(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOESIF_API_VERSION", "env")
    monkeypatch.setenv("MOESIF_BATCH_SIZE", "7")
    app = make_app()
    app.config["MOESIF_API_VERSION"] = "config"
    app.config["MOESIF_LOG_BODY"] = False
    moesif = MoesifFlask(app, {**SETTINGS, "LOG_BODY": True}, agent=agent)
    assert (moesif.settings.log_body, moesif.settings.api_version, moesif.settings.batch_size) == (True, "config", 7)


def test_bad_settings_fail_at_init_naming_the_key(agent: Any) -> None:
    app = make_app()
    with pytest.raises(SettingsError, match="APPLICATION_ID is missing"):
        MoesifFlask(app, agent=agent)
    app.config["MOESIF_APPLICATION_ID"] = "x"
    app.config["MOESIF_LOG_BODDY"] = True
    with pytest.raises(SettingsError, match="Did you mean 'LOG_BODY'"):
        MoesifFlask(app, agent=agent)
    app.config.pop("MOESIF_LOG_BODDY")
    app.config["MOESIF_SKIP"] = "no_such_module_here:skip"
    with pytest.raises(SettingsError, match="SKIP .* could not be imported"):
        MoesifFlask(app, agent=agent)
    assert not isinstance(app.wsgi_app, MoesifMiddleware)


def test_double_init_is_harmless(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    moesif = MoesifFlask(app, SETTINGS, agent=agent)
    wrapped = app.wsgi_app
    moesif.init_app(app)
    assert app.wsgi_app is wrapped
    with caplog.at_level(logging.WARNING, logger="moesif"):
        other = MoesifFlask(app, SETTINGS, agent=agent)
    assert app.wsgi_app is wrapped
    assert other.middleware is wrapped
    assert "already has a MoesifFlask" in caplog.text
    app.test_client().get("/ping").close()
    assert len(agent.records) == 1


def test_one_extension_serves_several_apps(agent: Any) -> None:
    moesif = MoesifFlask(agent=agent)
    first, second = make_app(), make_app()
    first.config["MOESIF_APPLICATION_ID"] = "first"
    second.config["MOESIF_APPLICATION_ID"] = "second"
    moesif.init_app(first)
    moesif.init_app(second)
    with second.app_context():
        assert moesif.settings.application_id == "second"
    with pytest.raises(RuntimeError, match="several apps"):
        _ = moesif.middleware
    assert moesif.flush(1.0) is True
    assert agent.calls == ["flush"]  # one shared sender is flushed once


def test_flush_close_stats_and_entities_are_exposed(agent: Any) -> None:
    app = make_app()
    moesif = MoesifFlask(app, SETTINGS, agent=agent)
    assert moesif.flush(2.0) is True
    assert moesif.update_user({"user_id": "u1"}) is True
    assert moesif.close(2.0) is True
    assert agent.calls == ["flush", "entity:users", "close"]
    assert isinstance(moesif.stats(), dict)
    with pytest.raises(ValueError, match="user_id"):
        moesif.update_user({"name": "no id"})


def test_uninitialized_extension_says_how_to_fix() -> None:
    with pytest.raises(RuntimeError, match="init_app"):
        _ = MoesifFlask().middleware
