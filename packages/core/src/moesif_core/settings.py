"""One validated, immutable settings object per middleware instance.

The incumbents read a plain dict lazily, so a typo in a key or a string where a number belongs
surfaces (if ever) as a silent misbehaviour in production. Here every key is declared once, in
``SPECS``; the settings are resolved at start-up from, in order of precedence, the explicit
dict, the framework's own config, then ``MOESIF_*`` environment variables, and any problem is
raised as :class:`SettingsError` naming the key and the fix. ``SPECS`` is also the single
source the configuration reference in ``docs/`` is generated from.

Example::

    settings = Settings.resolve({"APPLICATION_ID": "my-app-id", "LOG_BODY": False})
    settings.log_body  # False
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["DEFAULT_BASE_URI", "SPECS", "SettingSpec", "Settings", "SettingsError"]

DEFAULT_BASE_URI: Final = "https://api.moesif.net"
ENV_PREFIX: Final = "MOESIF_"


class SettingsError(ValueError):
    """A setting is missing, unknown or of the wrong type; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """How one settings key is named, typed, defaulted and documented."""

    key: str
    kind: str  # "str", "bool", "int", "float", "list", "callable"
    default: Any
    doc: str
    attr: str = ""
    minimum: float | None = None
    incumbent: bool = True  # accepted by moesifwsgi / moesifasgi with the same meaning

    @property
    def attribute(self) -> str:
        return self.attr or self.key.lower()


def _spec(key: str, kind: str, default: Any, doc: str, **kw: Any) -> SettingSpec:
    return SettingSpec(key, kind, default, doc, **kw)


SPECS: Final[tuple[SettingSpec, ...]] = (
    _spec("APPLICATION_ID", "str", None, "Your Moesif Application Id (required). Never logged in full."),
    _spec(
        "BASE_URI",
        "str",
        DEFAULT_BASE_URI,
        "Collector API address. Point it at `moesif-collector serve` (e.g. `http://127.0.0.1:8787`) during development.",
    ),
    _spec("DEBUG", "bool", False, "Log each decision (skip, sampling, masking, delivery) on the `moesif` logger at DEBUG level."),
    _spec("LOG_BODY", "bool", True, "Capture request and response bodies of incoming calls."),
    _spec(
        "LOG_BODY_MAX_BYTES",
        "int",
        65536,
        "Largest body kept per direction, in bytes. Larger bodies are cut at this size and the event says so "
        "(`metadata._moesif.request_body_truncated`); the app still reads the whole body.",
        minimum=0,
        incumbent=False,
    ),
    _spec("API_VERSION", "str", None, "Sent as `request.api_version` on every event."),
    _spec(
        "EVENT_QUEUE_SIZE",
        "int",
        1_000_000,
        "Most events held in memory waiting to be sent; more are dropped and counted.",
        minimum=1,
    ),
    _spec(
        "EVENT_QUEUE_MAX_BYTES",
        "int",
        64 * 1024 * 1024,
        "Most bytes (bodies, headers and per-event overhead) held in memory waiting to be sent; more are dropped and counted.",
        minimum=1024,
        incumbent=False,
    ),
    _spec("EVENT_WORKER_COUNT", "int", 2, "Concurrent batch posts to the Collector API.", minimum=1),
    _spec("BATCH_SIZE", "int", 100, "Most events in one batch post.", minimum=1),
    _spec(
        "BATCH_MAX_BYTES",
        "int",
        8 * 1024 * 1024,
        "Most uncompressed bytes in one batch post (the API accepts up to 50 MB).",
        minimum=1024,
        incumbent=False,
    ),
    _spec(
        "EVENT_BATCH_TIMEOUT",
        "float",
        1.0,
        "Longest time, in seconds, an event waits for its batch to fill before it is sent.",
        minimum=0.0,
    ),
    _spec(
        "SHUTDOWN_TIMEOUT",
        "float",
        5.0,
        "Longest time, in seconds, spent delivering queued events at exit or on `close()`; then the rest is dropped and counted.",
        minimum=0.0,
        incumbent=False,
    ),
    _spec(
        "HTTP_CONNECT_TIMEOUT",
        "float",
        5.0,
        "Seconds to wait for a connection to the Collector API.",
        minimum=0.01,
        incumbent=False,
    ),
    _spec("HTTP_READ_TIMEOUT", "float", 10.0, "Seconds to wait for the Collector API to answer.", minimum=0.01, incumbent=False),
    _spec(
        "MAX_RETRIES",
        "int",
        8,
        "Retries of a batch after a connection error, 408, 429 or 5xx (exponential backoff with jitter) before it is dropped and counted.",
        minimum=0,
        incumbent=False,
    ),
    _spec("RETRY_BACKOFF", "float", 0.5, "First retry delay in seconds; doubles on each retry.", minimum=0.0, incumbent=False),
    _spec("RETRY_BACKOFF_MAX", "float", 30.0, "Longest delay between two retries, in seconds.", minimum=0.0, incumbent=False),
    _spec(
        "CONFIG_REFRESH_INTERVAL",
        "float",
        60.0,
        "Seconds between two fetches of `/v1/config` and `/v1/rules` (also refetched when the config ETag changes).",
        minimum=0.05,
        incumbent=False,
    ),
    _spec(
        "AUTHORIZATION_HEADER_NAME",
        "list",
        ("authorization",),
        "Header(s) holding the user's token, checked in order (comma-separated string or list).",
    ),
    _spec("AUTHORIZATION_USER_ID_FIELD", "str", "sub", "JWT claim holding the user id; dotted paths such as `user.id` work."),
    _spec(
        "AUTHORIZATION_COMPANY_ID_FIELD",
        "str",
        None,
        "JWT claim holding the company id (e.g. `org_id`), used when `IDENTIFY_COMPANY` gives none.",
        incumbent=False,
    ),
    _spec("DISABLED_TRANSACTION_ID", "bool", False, "Do not add `X-Moesif-Transaction-Id` to responses and events."),
    _spec(
        "MASK_DEFAULT_CREDENTIALS",
        "bool",
        True,
        "Mask credential headers (Authorization, Cookie, API keys, ...) and body fields (password, token, secret, ...) "
        "before events leave the process. Set False to send them as they are.",
        incumbent=False,
    ),
    _spec("REQUEST_HEADER_MASKS", "list", (), "Extra request header names to mask (case-insensitive)."),
    _spec("RESPONSE_HEADER_MASKS", "list", (), "Extra response header names to mask (case-insensitive)."),
    _spec("REQUEST_BODY_MASKS", "list", (), "Extra JSON field names to mask in request bodies, at any depth."),
    _spec("RESPONSE_BODY_MASKS", "list", (), "Extra JSON field names to mask in response bodies, at any depth."),
    _spec(
        "IDENTIFY_USER", "callable", None, "`(app, environ, response_headers)` (WSGI) or `(request, response)` (ASGI) -> user id."
    ),
    _spec("IDENTIFY_COMPANY", "callable", None, "Same arguments as `IDENTIFY_USER` -> company id."),
    _spec("GET_METADATA", "callable", None, "`(app, environ)` (WSGI) or `(request, response)` (ASGI) -> JSON-able dict."),
    _spec("GET_SESSION_TOKEN", "callable", None, "`(app, environ)` (WSGI) or `(request, response)` (ASGI) -> session token."),
    _spec("SKIP", "callable", None, "`(app, environ)` (WSGI) or `(request, response)` (ASGI) -> True to not log this call."),
    _spec(
        "MASK_EVENT_MODEL",
        "callable",
        None,
        "`(event)` -> event; gets an object with attribute access (`event.response.body`), runs in the background.",
    ),
    _spec("CAPTURE_OUTGOING_REQUESTS", "bool", False, "Also capture calls the app makes with `requests` and `httpx`."),
    _spec("IDENTIFY_USER_OUTGOING", "callable", None, "`(req, res)` -> user id of an outgoing call."),
    _spec("IDENTIFY_COMPANY_OUTGOING", "callable", None, "`(req, res)` -> company id of an outgoing call."),
    _spec("GET_METADATA_OUTGOING", "callable", None, "`(req, res)` -> metadata of an outgoing call."),
    _spec("GET_SESSION_TOKEN_OUTGOING", "callable", None, "`(req, res)` -> session token of an outgoing call."),
    _spec("SKIP_OUTGOING", "callable", None, "`(req, res)` -> True to not log this outgoing call."),
    _spec("LOG_BODY_OUTGOING", "bool", True, "Capture bodies of outgoing calls."),
)

_BY_KEY: Final = {s.key: s for s in SPECS}
# Keys the incumbents accepted under another name.
_ALIASES: Final = {"LOCAL_MOESIF_BASEURL": "BASE_URI"}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key.upper(), [*_BY_KEY, *_ALIASES], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _coerce(spec: SettingSpec, value: Any, source: str) -> Any:
    """Turn a raw value (a Python object, or a string from the environment or an .ini) into its kind."""
    where = f"{spec.key} (from {source})"
    kind = spec.kind
    if value is None:
        if spec.key == "APPLICATION_ID":
            raise SettingsError(f"{where} is None: set it to your Moesif Application Id.")
        return None
    if kind == "callable":
        if not callable(value):
            raise SettingsError(f"{where} must be a callable, got {type(value).__name__}: pass the function itself.")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise SettingsError(f"{where} must be True or False, got {value!r}.")
    if kind == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{where} must be a string, got {type(value).__name__} {value!r}.")
        return value
    if kind == "list":
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise SettingsError(f"{where} must be a list of strings or a comma-separated string, got {value!r}.")
    if kind in ("int", "float"):
        number: float
        if isinstance(value, bool):
            raise SettingsError(f"{where} must be a number, got {value!r}.")
        if isinstance(value, str):
            try:
                number = int(value) if kind == "int" else float(value)
            except ValueError:
                raise SettingsError(
                    f"{where} must be {'a whole number' if kind == 'int' else 'a number'}, got {value!r}."
                ) from None
        elif isinstance(value, int) or (kind == "float" and isinstance(value, float)):
            number = value
        elif kind == "int" and isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise SettingsError(f"{where} must be {'a whole number' if kind == 'int' else 'a number'}, got {value!r}.")
        if spec.minimum is not None and number < spec.minimum:
            raise SettingsError(f"{where} must be at least {spec.minimum:g}, got {number!r}.")
        return int(number) if kind == "int" else float(number)
    raise AssertionError(kind)  # pragma: no cover - SPECS only uses the kinds above


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings of one middleware instance; build it with :meth:`resolve`."""

    application_id: str
    base_uri: str = DEFAULT_BASE_URI
    debug: bool = False
    log_body: bool = True
    log_body_max_bytes: int = 65536
    api_version: str | None = None
    event_queue_size: int = 1_000_000
    event_queue_max_bytes: int = 64 * 1024 * 1024
    event_worker_count: int = 2
    batch_size: int = 100
    batch_max_bytes: int = 8 * 1024 * 1024
    event_batch_timeout: float = 1.0
    shutdown_timeout: float = 5.0
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 10.0
    max_retries: int = 8
    retry_backoff: float = 0.5
    retry_backoff_max: float = 30.0
    config_refresh_interval: float = 60.0
    authorization_header_name: tuple[str, ...] = ("authorization",)
    authorization_user_id_field: str = "sub"
    authorization_company_id_field: str | None = None
    disabled_transaction_id: bool = False
    mask_default_credentials: bool = True
    request_header_masks: tuple[str, ...] = ()
    response_header_masks: tuple[str, ...] = ()
    request_body_masks: tuple[str, ...] = ()
    response_body_masks: tuple[str, ...] = ()
    identify_user: Callable[..., Any] | None = None
    identify_company: Callable[..., Any] | None = None
    get_metadata: Callable[..., Any] | None = None
    get_session_token: Callable[..., Any] | None = None
    skip: Callable[..., Any] | None = None
    mask_event_model: Callable[..., Any] | None = None
    capture_outgoing_requests: bool = False
    identify_user_outgoing: Callable[..., Any] | None = None
    identify_company_outgoing: Callable[..., Any] | None = None
    get_metadata_outgoing: Callable[..., Any] | None = None
    get_session_token_outgoing: Callable[..., Any] | None = None
    skip_outgoing: Callable[..., Any] | None = None
    log_body_outgoing: bool = True
    # The dict as the user gave it (keys upper-cased), for integrations that read extra keys.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Settings(application_id={mask_application_id(self.application_id)!r}, base_uri={self.base_uri!r})"

    @classmethod
    def resolve(
        cls,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        framework_config: Mapping[str, Any] | None = None,
        framework_source: str = "framework config",
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from an explicit dict, then the framework's config, then ``MOESIF_*`` variables.

        ``framework_config`` holds keys already stripped of any framework prefix (``MOESIF_`` in
        Flask's ``app.config``, ``moesif.`` in Pyramid's ``.ini``). Raises :class:`SettingsError`.
        """
        if isinstance(settings, Settings):
            return settings
        if settings is not None and not isinstance(settings, Mapping):
            raise SettingsError(f"settings must be a dict of Moesif settings, got {type(settings).__name__}.")
        env = os.environ if environ is None else environ
        layers: list[tuple[str, Mapping[str, Any]]] = []
        if settings:
            layers.append(("settings", settings))
        if framework_config:
            layers.append((framework_source, framework_config))
        env_layer = {k[len(ENV_PREFIX) :]: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        values: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        for source, layer in layers:
            for key, value in layer.items():
                if not isinstance(key, str):
                    raise SettingsError(f"setting names must be strings, got {key!r} (from {source}).")
                upper = _ALIASES.get(key.upper(), key.upper())
                spec = _BY_KEY.get(upper)
                if spec is None:
                    raise SettingsError(f"unknown Moesif setting {key!r} (from {source}).{_did_you_mean(key)}")
                raw.setdefault(upper, value)
                if spec.attribute not in values:
                    values[spec.attribute] = _coerce(spec, value, source)
        for key, value in env_layer.items():
            upper = _ALIASES.get(key.upper(), key.upper())
            spec = _BY_KEY.get(upper)
            # Other tools may own MOESIF_* variables too: only keys we know are read, callables never.
            if spec is None or spec.kind == "callable" or spec.attribute in values:
                continue
            values[spec.attribute] = _coerce(spec, value, f"environment variable {ENV_PREFIX}{key}")
            raw.setdefault(upper, value)
        app_id = values.get("application_id")
        if not app_id or not str(app_id).strip():
            raise SettingsError(
                "APPLICATION_ID is missing: pass settings={'APPLICATION_ID': '...'} or set the environment "
                "variable MOESIF_APPLICATION_ID (find it in your Moesif account under API Keys; for the local "
                "collector any non-empty value works)."
            )
        base_uri = str(values.get("base_uri") or DEFAULT_BASE_URI).rstrip("/")
        if not base_uri.startswith(("http://", "https://")):
            raise SettingsError(f"BASE_URI must start with http:// or https://, got {base_uri!r}.")
        values["base_uri"] = base_uri
        return cls(**values, raw=raw)


def mask_application_id(app_id: str) -> str:
    """The application id as it may appear in logs: enough to tell two apart, never the whole."""
    if len(app_id) <= 8:
        return "*" * len(app_id)
    return f"{app_id[:4]}...{app_id[-4:]}"
