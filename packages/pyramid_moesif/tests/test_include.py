"""config.include('pyramid_moesif'): settings from the .ini, double include, the tween check, lifecycle."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.paster import get_app
from pyramid.response import Response

import pyramid_moesif
from pyramid_moesif import SettingsError, get_moesif

SETTINGS = {"moesif.application_id": "test-app", "moesif.base_uri": "http://127.0.0.1:9"}


def identify_from_ini(app: Any, environ: Any, headers: Any = None) -> str:
    return "from-ini"


def add_ping(config: Configurator) -> None:
    config.add_route("ping", "/ping")
    config.add_view(lambda request: {"pong": True}, route_name="ping", renderer="json")


def make_app(agent: Any, settings: dict[str, Any] | None = None, include_twice: bool = False) -> Any:
    config = Configurator(settings={**SETTINGS, **(settings or {})})
    config.include("pyramid_moesif")
    if include_twice:
        config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    add_ping(config)
    return config.make_wsgi_app()


def main(global_config: Any, **settings: Any) -> Any:
    """The app factory the .ini test points PasteDeploy at."""
    config = Configurator(settings=settings)
    config.configure_moesif(agent=main.agent)  # type: ignore[attr-defined]
    add_ping(config)
    return config.make_wsgi_app()


def test_include_captures_every_call_of_the_router(agent: Any) -> None:
    app = make_app(agent)
    middleware = get_moesif(app)
    assert middleware.callback_app is app
    assert webtest.TestApp(app).get("/ping").json == {"pong": True}
    assert [(r.path, r.status, r.route) for r in agent.records] == [("/ping", 200, "/ping")]


def test_settings_from_a_paste_ini_with_pyramid_includes(agent: Any, tmp_path: Path) -> None:
    ini = tmp_path / "development.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [app:main]
            use = call:{__name__}:main
            pyramid.includes = pyramid_moesif
            moesif.application_id = from-ini
            moesif.base_uri = http://127.0.0.1:9
            moesif.log_body = false
            moesif.batch_size = 25
            moesif.identify_user = {__name__}:identify_from_ini
            moesif.request_header_masks = X-Api-Key, X-Secret
            """
        )
    )
    main.agent = agent  # type: ignore[attr-defined]
    app = get_app(f"{ini}#main")
    settings = get_moesif(app).settings
    assert (settings.application_id, settings.log_body, settings.batch_size) == ("from-ini", False, 25)
    assert settings.identify_user is identify_from_ini
    assert settings.request_header_masks == ("X-Api-Key", "X-Secret")
    webtest.TestApp(app).get("/ping")
    [record] = agent.records
    assert (record.user_id, record.response_body) == ("from-ini", None)


def test_dotted_names_resolve_in_both_spellings(agent: Any) -> None:
    app = make_app(agent, {"moesif.identify_user": f"{__name__}.identify_from_ini", "moesif.skip": "pyramid_moesif:request_of"})
    settings = get_moesif(app).settings
    assert settings.identify_user is identify_from_ini
    assert settings.skip is pyramid_moesif.request_of


def test_configure_moesif_dict_wins_over_ini_which_wins_over_environment(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOESIF_API_VERSION", "env")
    monkeypatch.setenv("MOESIF_BATCH_SIZE", "7")
    config = Configurator(settings={**SETTINGS, "moesif.api_version": "ini", "moesif.log_body": "false"})
    config.include("pyramid_moesif")
    config.configure_moesif({"LOG_BODY": True}, agent=agent)
    settings = get_moesif(config.make_wsgi_app()).settings
    assert (settings.log_body, settings.api_version, settings.batch_size) == (True, "ini", 7)


def test_bad_settings_fail_at_make_wsgi_app_naming_the_key(agent: Any) -> None:
    with pytest.raises(SettingsError, match="APPLICATION_ID is missing"):
        make_app(agent, {"moesif.application_id": ""})
    with pytest.raises(SettingsError, match="Did you mean 'BATCH_SIZE'"):
        make_app(agent, {"moesif.batchsize": "10"})
    with pytest.raises(SettingsError, match="BATCH_SIZE .* whole number"):
        make_app(agent, {"moesif.batch_size": "ten"})
    with pytest.raises(SettingsError, match="IDENTIFY_USER .* could not be resolved"):
        make_app(agent, {"moesif.identify_user": "no_such_module_here:identify"})


def test_including_twice_is_harmless(agent: Any) -> None:
    app = make_app(agent, include_twice=True)
    webtest.TestApp(app).get("/ping")
    assert len(agent.records) == 1


def test_explicit_tween_list_without_ours_warns_and_still_captures(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="moesif"):
        app = make_app(agent, {"pyramid.tweens": "pyramid.tweens.excview_tween_factory"})
    assert "leaves out 'pyramid_moesif.tween_factory'" in caplog.text
    webtest.TestApp(app).get("/ping")
    assert [(r.path, r.route) for r in agent.records] == [("/ping", None)]


def test_explicit_tween_list_with_ours_is_quiet(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    tweens = "pyramid_moesif.tween_factory\npyramid.tweens.excview_tween_factory"
    with caplog.at_level(logging.WARNING, logger="moesif"):
        app = make_app(agent, {"pyramid.tweens": tweens})
    assert caplog.text == ""
    webtest.TestApp(app).get("/ping")
    assert [r.route for r in agent.records] == ["/ping"]


def test_an_execution_policy_of_another_add_on_still_runs_inside(agent: Any) -> None:
    seen: list[str] = []

    def retrying_policy(environ: Any, router: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        with router.request_context(environ) as request:
            return router.invoke_request(request)

    config = Configurator(settings=SETTINGS)
    config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    config.set_execution_policy(retrying_policy)
    add_ping(config)
    webtest.TestApp(config.make_wsgi_app()).get("/ping")
    assert seen == ["/ping"]
    assert [r.path for r in agent.records] == ["/ping"]


def test_two_apps_from_one_configurator_share_one_sender(agent: Any) -> None:
    config = Configurator(settings=SETTINGS)
    config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    add_ping(config)
    first, second = config.make_wsgi_app(), config.make_wsgi_app()
    assert get_moesif(first) is not get_moesif(second)
    assert get_moesif(first).agent is get_moesif(second).agent is agent
    assert get_moesif(config.registry) is get_moesif(first)
    webtest.TestApp(second).get("/ping")
    assert len(agent.records) == 1


def test_flush_close_and_entities_through_get_moesif(agent: Any) -> None:
    app = make_app(agent)
    moesif = get_moesif(app)
    assert moesif.flush(2.0) is True
    assert moesif.update_user({"user_id": "u1"}) is True
    assert moesif.close(2.0) is True
    assert agent.calls == ["flush", "entity:users", "close"]


def test_get_moesif_without_include_says_how_to_fix() -> None:
    config = Configurator()
    config.add_view(lambda request: Response("x"), name="x")
    with pytest.raises(RuntimeError, match="config.include"):
        get_moesif(config.make_wsgi_app())


def test_our_subscriber_alone_does_not_turn_on_pyramids_events_for_every_call(agent: Any) -> None:
    # Any subscriber makes Pyramid build and send four events on every call; ours is only for
    # ApplicationCreated, so the flag goes back off, and the app's own subscribers still work.
    app = make_app(agent)
    assert app.registry.has_listeners is False
    webtest.TestApp(app).get("/ping")
    assert len(agent.records) == 1

    from pyramid.events import NewRequest

    seen: list[str] = []
    config = Configurator(settings=SETTINGS)
    config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    config.add_subscriber(lambda event: seen.append(event.request.path), NewRequest)
    add_ping(config)
    app = config.make_wsgi_app()
    assert app.registry.has_listeners is True
    webtest.TestApp(app).get("/ping")
    assert seen == ["/ping"] and len(agent.records) == 2


def test_a_later_app_of_the_same_configurator_is_captured_without_the_event(agent: Any) -> None:
    config = Configurator(settings=SETTINGS)
    config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    add_ping(config)
    config.make_wsgi_app()
    assert config.registry.has_listeners is False  # ApplicationCreated is not sent to us again
    later = config.make_wsgi_app()
    webtest.TestApp(later).get("/ping")
    assert [r.path for r in agent.records] == ["/ping"]
    assert get_moesif(later).callback_app is later
