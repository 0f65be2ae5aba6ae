"""A :class:`~moesif_core.record.RawExchange` -> the Moesif event dict of the spec, on the sender thread.

Everything the request path deferred happens here: header normalisation, URL assembly, client IP,
user and company ids from the token, body decoding (gzip, JSON or base64), credential masking,
metadata cleaning and the user's ``MASK_EVENT_MODEL``. One :class:`EventBuilder` per settings
object precomputes what it can (mask name sets, the identifier, caps), so a typical event costs
microseconds. Nothing a user callback or a client sends can make :meth:`EventBuilder.build` raise;
every event it returns serialises with ``orjson``.

Example::

    builder = EventBuilder(settings)
    event = builder.build(record)  # dict, or None when the record could not be built (logged once)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import orjson

from .body_codec import DecodedBody, decode_body
from .client_ip import client_ip
from .event_json import native_event_writer
from .event_model import EventModel, event_from_model
from .headers import normalize_headers
from .identify import Identifier
from .json_scan import PlainJsonCheck, plain_json_check
from .log import logger, warn_once
from .masking import TRANSACTION_ID_HEADER, KeyFinder, Masks, mask_form, mask_headers, mask_json
from .record import RawExchange
from .settings import Settings
from .timefmt import format_event_time

__all__ = ["DUMPS_OPTIONS", "EventBuilder", "dumps_event"]

# What the sender passes to orjson.dumps for a batch; build() guarantees each event survives it.
DUMPS_OPTIONS: Final = orjson.OPT_NON_STR_KEYS
_DIRECTIONS: Final = frozenset({"Incoming", "Outgoing"})
_SAFE_DEPTH: Final = 200
_U64_MAX: Final = 2**64 - 1
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


def dumps_event(value: Any) -> bytes:
    """``orjson.dumps`` as the sender does it (``default=str``, non-str keys allowed)."""
    return orjson.dumps(value, default=str, option=DUMPS_OPTIONS)


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return str(value) or None


def _int(value: Any, default: int, low: int = 0, high: int = 2**63 - 1) -> int:
    """``value`` as an int within ``[low, high]`` (what JSON readers take), else ``default``."""
    if type(value) is not int:
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            return default
    return value if low <= value <= high else default


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` made only of what orjson always accepts (the rare path after a failed dumps)."""
    if depth > _SAFE_DEPTH:
        return "*****"
    if value is None or isinstance(value, (bool, float, orjson.Fragment)):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:  # lone surrogates
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _U64_MAX else str(value)
    if isinstance(value, dict):
        return {
            _json_safe(key if isinstance(key, str) else _safe_str(key), depth + 1): _json_safe(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, depth + 1) for item in value]
    return _json_safe(_safe_str(value), depth + 1)


_URI_SAFE: Final = "/%:@!$&'()*+,;=~?"


def _uri_safe(text: str, style: str) -> str:
    """Percent-encode what a URI cannot carry. WSGI strings are the raw bytes decoded as latin-1
    (PEP 3333); ASGI paths are already text, so their UTF-8 bytes are what went over the wire."""
    if text.isascii():
        return text
    try:
        raw = text.encode("latin-1") if style in ("wsgi", "environ") else text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "replace")
    return quote(raw, safe=_URI_SAFE)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class _BodyHooks:
    """The masking hooks :func:`decode_body` takes, for one set of body field names."""

    __slots__ = ("form", "json", "prefilter")

    def __init__(self, names: frozenset[str], masked: list[str] | None) -> None:
        def json_masker(value: Any) -> Any:
            return mask_json(value, names, masked)

        def form_masker(raw: bytes) -> bytes:
            return mask_form(raw, names, masked)

        self.json = json_masker
        self.form = form_masker
        self.prefilter = KeyFinder.of(names).may_match

    @classmethod
    def of(cls, names: frozenset[str], masked: list[str] | None) -> _BodyHooks | None:
        """None when there is nothing to mask."""
        return cls(names, masked) if names else None


class EventBuilder:
    """Builds events for one settings object; thread-safe, build once per middleware instance."""

    __slots__ = (
        "_api_version",
        "_debug",
        "_decoded_limit",
        "_identifier",
        "_mask_event_model",
        "_masks",
        "_native_json",
        "_request_hooks",
        "_request_plain",
        "_response_hooks",
        "_response_plain",
    )

    def __init__(self, settings: Settings) -> None:
        self._api_version = settings.api_version
        self._debug = settings.debug
        self._identifier = Identifier.from_settings(settings)
        self._masks = Masks.from_settings(settings)
        # A compressed body expands: allow some room beyond the capture cap, never unbounded.
        self._decoded_limit = max(settings.log_body_max_bytes, 65536) * 4
        self._mask_event_model: Callable[..., Any] | None = settings.mask_event_model
        # Made once: the sender must not build closures for every body.
        self._request_hooks = _BodyHooks.of(self._masks.request_body, None)
        self._response_hooks = _BodyHooks.of(self._masks.response_body, None)
        # The one-pass native check when it is built (None otherwise): most of a JSON body's cost.
        self._request_plain = plain_json_check(self._masks.request_body)
        self._response_plain = plain_json_check(self._masks.response_body)
        # The usual event written in C when that is built (None otherwise); it answers None for
        # any record it does not handle exactly, and _build_safely builds that one.
        self._native_json = native_event_writer(
            settings, self._identifier, self._masks, self._request_plain, self._response_plain
        )

    @property
    def identifier(self) -> Identifier:
        """The identifier of these settings, for the request path (see :mod:`moesif_core.identify`)."""
        return self._identifier

    def build(self, record: RawExchange) -> dict[str, Any] | None:
        """The event for ``record``, serialisable with :func:`dumps_event`; None (logged once) if it cannot be built."""
        built = self._build_safely(record, serialise=False)
        return None if built is None else built[0]

    def build_json(self, record: RawExchange) -> bytes | None:
        """The event for ``record`` already serialised (one JSON object), so a batch is ``b"[" + b",".join(...) + b"]"``."""
        native = self._native_json
        if native is not None:
            data = native.event(record)
            if data is not None:
                return data
        built = self._build_safely(record, serialise=True)
        return None if built is None else built[1]

    def build_json_batch(self, records: list[RawExchange], limit: int) -> tuple[list[tuple[bytes, int]], int]:
        """The events of ``records`` in order as JSON pieces ``(events joined by ",", how many)``, and how many gave none.

        The native writer takes the batch at once and writes it with the GIL released; each
        piece it gives stays within ``limit`` once bracketed (see ``Writer.events``). What it hands
        back, and every record without it, is built here one by one, one piece each.
        """
        items: list[Any] = records
        native = self._native_json
        if native is not None:
            try:
                items = native.events(records, limit)
            except Exception as exc:  # MemoryError: each record is built on its own below
                warn_once("event-batch-error", "moesif: writing a batch of events failed (%s: %s)", type(exc).__name__, exc)
        pieces: list[tuple[bytes, int]] = []
        failed = 0
        for item in items:
            if type(item) is tuple:
                pieces.append(item)
                continue
            built = self._build_safely(item, serialise=True)
            if built is None:
                failed += 1
            else:
                pieces.append((built[1], 1))
        return pieces, failed

    def _build_safely(self, record: RawExchange, *, serialise: bool) -> tuple[dict[str, Any], bytes] | None:
        try:
            # Bodies ride as orjson fragments of their own bytes only into JSON: build() returns values.
            event = self._build(record, embed=serialise and self._mask_event_model is None)
            try:
                # Plain orjson first: every field is a str-keyed dict, a str, an int or None by now,
                # and the options of dumps_event cost a third more on every event.
                data = orjson.dumps(event)
            except (TypeError, orjson.JSONEncodeError):
                try:
                    data = dumps_event(event)
                except (TypeError, orjson.JSONEncodeError) as exc:
                    warn_once(
                        "event-unserialisable", "moesif: an event held values JSON cannot carry (%s); sent them as text", exc
                    )
                    event = _json_safe(event)
                    data = dumps_event(event)
            return event, data
        except Exception as exc:
            warn_once(
                "event-build-error",
                "moesif: could not build an event (%s: %s); it was dropped",
                type(exc).__name__,
                exc,
                exc_info=True,
            )
            return None

    def _identity(self, record: RawExchange, headers: dict[str, str]) -> tuple[str | None, str | None]:
        user_id = self._callback_id(record.user_id, "user")
        company_id = self._callback_id(record.company_id, "company")
        if (user_id is None or company_id is None) and record.direction != "Outgoing":
            # An outgoing call's Authorization names the app to the third party, not a user of ours.
            from_token = self._identifier.identify(headers)
            if user_id is None:
                user_id = from_token[0]
            if company_id is None:
                company_id = from_token[1]
        elif self._debug:
            logger.debug("moesif: user and company ids from the IDENTIFY_* callbacks")
        return user_id, company_id

    def _callback_id(self, value: Any, kind: str) -> str | None:
        """What IDENTIFY_USER / IDENTIFY_COMPANY returned, as a string; unusable values count as none."""
        if value is None:
            return None
        if isinstance(value, str):
            if value:
                return value
        elif isinstance(value, (bool, dict, list, tuple, set, frozenset)):
            pass
        elif isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8", "replace")
            if text:
                return text
        else:
            try:
                text = str(value)
            except Exception:
                text = ""
            if text:
                return text
        warn_once(
            f"event-{kind}-id",
            "moesif: IDENTIFY_%s returned %s, not a usable %s id; falling back to the authorization header",
            kind.upper(),
            "an empty string" if isinstance(value, str) else f"a {type(value).__name__}",
            kind,
        )
        return None

    def _metadata(self, record: RawExchange) -> dict[str, Any] | None:
        metadata = record.metadata
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            warn_once(
                "event-metadata-type", "moesif: GET_METADATA returned %s, not a dict; metadata dropped", type(metadata).__name__
            )
            return None
        try:
            # A round trip makes it plain JSON now, detached from objects the app may still change.
            cleaned = orjson.loads(dumps_event(metadata))
        except Exception as exc:
            warn_once("event-metadata-json", "moesif: GET_METADATA returned a dict JSON cannot carry (%s); metadata dropped", exc)
            return None
        return cleaned if isinstance(cleaned, dict) else None

    def _body(
        self, data: bytes | None, headers: dict[str, str], hooks: _BodyHooks | None, embed: bool, plain: PlainJsonCheck | None
    ) -> DecodedBody:
        if not data:
            return DecodedBody(None, None, False)
        return decode_body(
            data,
            headers.get("content-encoding"),
            headers.get("content-type"),
            self._decoded_limit,
            json_masker=None if hooks is None else hooks.json,
            form_masker=None if hooks is None else hooks.form,
            mask_prefilter=None if hooks is None else hooks.prefilter,
            embed=embed,
            plain_check=plain,
        )

    def _build(self, record: RawExchange, *, embed: bool = False) -> dict[str, Any]:
        masks = self._masks
        debug = self._debug
        request_headers = normalize_headers(record.request_headers, record.request_header_style)
        response_headers = normalize_headers(record.response_headers, record.response_header_style)
        # The common types are checked inline: a helper call per field is a tenth of an event's cost.
        transaction_id = record.transaction_id
        if type(transaction_id) is not str or not transaction_id:
            transaction_id = _str_or_none(transaction_id)
        if transaction_id is not None:
            request_headers.setdefault(TRANSACTION_ID_HEADER, transaction_id)
            response_headers.setdefault(TRANSACTION_ID_HEADER, transaction_id)

        # Ids first: masking below hides the very header they come from.
        if record.user_id is None and record.company_id is None and record.direction != "Outgoing":
            user_id, company_id = self._identifier.identify(request_headers)
        else:
            user_id, company_id = self._identity(record, request_headers)

        request_masked: list[str] = []
        response_masked: list[str] = []
        if debug:  # hooks that also note the field names masked, for the log line below
            request_hooks = _BodyHooks.of(masks.request_body, request_masked)
            response_hooks = _BodyHooks.of(masks.response_body, response_masked)
        else:
            request_hooks, response_hooks = self._request_hooks, self._response_hooks
        request_body = self._body(record.request_body, request_headers, request_hooks, embed, self._request_plain)
        response_body = self._body(record.response_body, response_headers, response_hooks, embed, self._response_plain)
        masked_request_headers = mask_headers(request_headers, masks.request_headers)
        masked_response_headers = mask_headers(response_headers, masks.response_headers)
        if debug and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "moesif: masked request headers %s, request body fields %s, response headers %s, response body fields %s",
                masked_request_headers,
                sorted(set(request_masked)),
                masked_response_headers,
                sorted(set(response_masked)),
            )

        metadata = None if record.metadata is None else self._metadata(record)
        request_cut = bool(record.request_body_truncated) or request_body.cut
        response_cut = bool(record.response_body_truncated) or response_body.cut
        route = record.route if isinstance(record.route, str) and record.route else None
        if request_cut or response_cut or route:
            notes: dict[str, Any] = {}
            if route:
                # The framework's route template (e.g. "/items/{item_id}"): groups calls by endpoint.
                notes["route"] = route
            if request_cut:
                notes["request_body_truncated"] = True
                notes["request_body_size"] = _int(record.request_body_size, 0)
            if response_cut:
                notes["response_body_truncated"] = True
                notes["response_body_size"] = _int(record.response_body_size, 0)
            metadata = {} if metadata is None else metadata
            metadata["_moesif"] = notes

        uri = record.full_url
        if not uri:
            path = f"{record.root_path}{record.path}"
            query = record.query_string
            if type(query) is not str:
                query = _safe_str(query) if query else ""
            if not (path.isascii() and query.isascii()):
                path, query = _uri_safe(path, record.request_header_style), _uri_safe(query, record.request_header_style)
            uri = f"{record.scheme}://{record.host}{path}"
            if query:
                uri = f"{uri}?{query}"
        elif type(uri) is not str:
            uri = _safe_str(uri)
        verb = record.method
        if type(verb) is not str:
            verb = _safe_str(verb)
        direction = record.direction
        if type(direction) is not str or direction not in _DIRECTIONS:
            direction = "Incoming"

        status = record.status
        if type(status) is not int or not 0 <= status <= 999:
            status = _int(status, 0, 0, 999)
        weight = record.weight
        if type(weight) is not int or not 1 <= weight <= _I64_MAX:
            weight = _int(weight, 1, 1)
        session_token = record.session_token
        if session_token is not None and (type(session_token) is not str or not session_token):
            session_token = self._session_token(session_token)
        blocked_by = record.blocked_by
        if blocked_by is not None:
            blocked_by = _str_or_none(blocked_by)

        event: dict[str, Any] = {
            "request": {
                "time": format_event_time(record.request_time),
                "uri": uri,
                "verb": verb,
                "api_version": self._api_version,
                "ip_address": client_ip(request_headers, record.client_addr),
                "headers": request_headers,
                "body": request_body.body,
                "transfer_encoding": request_body.transfer_encoding,
            },
            "response": {
                "time": format_event_time(record.response_time),
                "status": status,
                "headers": response_headers,
                "body": response_body.body,
                "ip_address": None,
                "transfer_encoding": response_body.transfer_encoding,
            },
            "user_id": user_id,
            "company_id": company_id,
            "session_token": session_token,
            "metadata": metadata,
            "tags": None,
            "direction": direction,
            "weight": weight,
            "blocked_by": blocked_by,
            "transaction_id": transaction_id,
        }
        if self._mask_event_model is not None:
            event = self._apply_mask_event_model(event)
        return event

    def _session_token(self, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value or None
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", "replace") or None
        try:
            return str(value) or None
        except Exception:
            warn_once(
                "event-session-token", "moesif: GET_SESSION_TOKEN returned a %s that has no text; ignored", type(value).__name__
            )
            return None

    def _apply_mask_event_model(self, event: dict[str, Any]) -> dict[str, Any]:
        """The user's MASK_EVENT_MODEL on a copy; on any failure the already-masked event is kept."""
        callback = self._mask_event_model
        try:
            result = callback(EventModel.from_event(event)) if callback is not None else None
        except Exception as exc:
            warn_once(
                "mask-event-model-raised",
                "moesif: MASK_EVENT_MODEL raised %s: %s; the event was sent with the default masking only",
                type(exc).__name__,
                exc,
            )
            return event
        changed = event_from_model(result)
        if changed is None:
            warn_once(
                "mask-event-model-unusable",
                "moesif: MASK_EVENT_MODEL returned %s instead of the event; the event was sent with the default masking only "
                "(return the event you were given)",
                type(result).__name__,
            )
            return event
        return changed
