"""MoesifPlugin as a Bottle plugin: install, settings from app.config, double install, lifecycle."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bottle
import pytest
import webtest

from bottle_moesif import MoesifPlugin, SettingsError
from moesif_core.wsgi import MoesifMiddleware

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def identify_from_config(app: Any, environ: Any, headers: Any = None) -> str:
    return "from-ini"


def make_app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/ping")
    def ping() -> Any:
        return {"pong": True}

    return app


def test_install_wraps_the_wsgi_entry_point(agent: Any) -> None:
    app = make_app()
    plugin = app.install(MoesifPlugin(SETTINGS, agent=agent))
    assert isinstance(app.wsgi, MoesifMiddleware)
    assert plugin.middleware is app.wsgi
    assert plugin.middleware.callback_app is app
    assert webtest.TestApp(app).get("/ping").json == {"pong": True}
    assert [(r.path, r.status) for r in agent.records] == [("/ping", 200)]


def test_settings_from_an_ini_file_loaded_into_app_config(agent: Any, tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[moesif]\n"
        "application_id = from-ini\n"
        "base_uri = http://127.0.0.1:9\n"
        "log_body = false\n"
        "batch_size = 25\n"
        f"identify_user = {__name__}:identify_from_config\n"
    )
    app = make_app()
    app.config.load_config(str(ini))
    plugin = app.install(MoesifPlugin(agent=agent))
    settings = plugin.settings
    assert (settings.application_id, settings.log_body, settings.batch_size) == ("from-ini", False, 25)
    assert settings.identify_user is identify_from_config
    webtest.TestApp(app).get("/ping")
    [record] = agent.records
    assert record.user_id == "from-ini"
    assert record.response_body is None


def test_settings_dict_wins_over_app_config_which_wins_over_environment(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOESIF_API_VERSION", "env")
    monkeypatch.setenv("MOESIF_BATCH_SIZE", "7")
    app = make_app()
    app.config["moesif.api_version"] = "config"
    app.config["moesif.log_body"] = "false"
    plugin = app.install(MoesifPlugin({**SETTINGS, "LOG_BODY": True}, agent=agent))
    assert (plugin.settings.log_body, plugin.settings.api_version, plugin.settings.batch_size) == (True, "config", 7)


def test_bad_settings_fail_at_install_naming_the_key(agent: Any) -> None:
    app = make_app()
    with pytest.raises(SettingsError, match="APPLICATION_ID is missing"):
        app.install(MoesifPlugin(agent=agent))
    app.config["moesif.application_id"] = "x"
    app.config["moesif.identify_user"] = "__import__('os').getcwd()"
    with pytest.raises(SettingsError, match="IDENTIFY_USER .* must be 'package.module:function'"):
        app.install(MoesifPlugin(agent=agent))
    app.config["moesif.identify_user"] = "no_such_module_here:identify"
    with pytest.raises(SettingsError, match="could not be imported"):
        app.install(MoesifPlugin(agent=agent))
    assert not isinstance(app.wsgi, MoesifMiddleware)


def test_double_install_is_harmless(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    plugin = MoesifPlugin(SETTINGS, agent=agent)
    app.install(plugin)
    wrapped = app.wsgi
    app.install(plugin)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        other = app.install(MoesifPlugin(SETTINGS, agent=agent))
    assert app.wsgi is wrapped is other.middleware
    assert "already has a MoesifPlugin" in caplog.text
    webtest.TestApp(app).get("/ping")
    assert len(agent.records) == 1
    assert agent.records[0].route == "/ping"


def test_app_close_flushes_stops_and_unwraps(agent: Any) -> None:
    app = make_app()
    plugin = app.install(MoesifPlugin(SETTINGS, agent=agent))
    assert plugin.flush(2.0) is True
    assert plugin.update_company({"company_id": "acme"}) is True
    app.close()
    assert agent.calls == ["flush", "entity:companies", "close"]
    assert not isinstance(app.wsgi, MoesifMiddleware)
    webtest.TestApp(app).get("/ping")
    assert agent.records == []
    assert isinstance(plugin.stats(), dict)


def test_uninstalled_plugin_says_how_to_fix() -> None:
    with pytest.raises(RuntimeError, match="app.install"):
        MoesifPlugin().flush()
