"""The object ``MASK_EVENT_MODEL`` receives: the event with attribute access, as the incumbents gave it.

Callbacks written for moesifwsgi/moesifasgi read and set ``event.request.headers``,
``event.response.body``, ``event.user_id``; item access (``event["request"]["body"]``) works too.
The model wraps a copy of the event, so a callback that raises half-way leaves the already-masked
event intact; :func:`event_from_model` turns what the callback returned back into an event dict of
exactly the spec's keys, or None when it returned something unusable.

Example::

    def mask(event):
        event.request.headers.pop("x-internal", None)
        event.response.body = None
        return event
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

__all__ = [
    "EVENT_KEYS",
    "REQUEST_KEYS",
    "RESPONSE_KEYS",
    "EventModel",
    "EventRequestModel",
    "EventResponseModel",
    "event_from_model",
]

REQUEST_KEYS: Final = ("time", "uri", "verb", "api_version", "ip_address", "headers", "body", "transfer_encoding")
RESPONSE_KEYS: Final = ("time", "status", "headers", "body", "ip_address", "transfer_encoding")
EVENT_KEYS: Final = (
    "request",
    "response",
    "user_id",
    "company_id",
    "session_token",
    "metadata",
    "tags",
    "direction",
    "weight",
    "blocked_by",
    "transaction_id",
)


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, _Section) else value


class _Section:
    """Attribute and item access over a dict with a fixed set of keys."""

    __slots__ = ("_data",)
    _keys: tuple[str, ...] = ()

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, i.e. for the event's own fields.
        if name in self._keys:
            return self._data.get(name)
        raise AttributeError(f"{type(self).__name__} has no field {name!r}; fields: {', '.join(self._keys)}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._keys:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}; fields: {', '.join(self._keys)}")
        self._data[name] = _plain(value)

    def __getitem__(self, name: str) -> Any:
        if name not in self._keys:
            raise KeyError(name)
        return getattr(self, name)

    def __setitem__(self, name: str, value: Any) -> None:
        try:
            setattr(self, name, value)
        except AttributeError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._keys else default

    def keys(self) -> tuple[str, ...]:
        return self._keys

    def to_dict(self) -> dict[str, Any]:
        return {key: _plain(self._data.get(key)) for key in self._keys}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._keys)})"


class EventRequestModel(_Section):
    __slots__ = ()
    _keys = REQUEST_KEYS


class EventResponseModel(_Section):
    __slots__ = ()
    _keys = RESPONSE_KEYS


class EventModel(_Section):
    """The whole event; ``request`` and ``response`` are models too (dicts assigned to them work)."""

    __slots__ = ()
    _keys = EVENT_KEYS

    def __getattr__(self, name: str) -> Any:
        if name in ("request", "response"):
            section = self._data.get(name)
            if isinstance(section, dict):
                return (EventRequestModel if name == "request" else EventResponseModel)(section)
            return section
        return super().__getattr__(name)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> EventModel:
        """A model over a copy of ``event``: the callback's changes never touch the original."""
        data = dict(event)
        for name in ("request", "response"):
            section = data.get(name)
            if isinstance(section, dict):
                section = dict(section)
                if isinstance(section.get("headers"), dict):
                    section["headers"] = dict(section["headers"])
                section["body"] = _copy_json(section.get("body"))
                data[name] = section
        data["metadata"] = _copy_json(data.get("metadata"))
        return cls(data)


def _copy_json(value: Any) -> Any:
    if not isinstance(value, (dict, list)):
        return value
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        return copy.deepcopy(value)


def _section(value: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
    value = _plain(value)
    if not isinstance(value, Mapping):
        return None
    return {key: _plain(value.get(key)) for key in keys}


def event_from_model(result: Any) -> dict[str, Any] | None:
    """What ``MASK_EVENT_MODEL`` returned -> an event dict of exactly the spec's keys, or None if unusable."""
    result = _plain(result)
    if not isinstance(result, Mapping):
        return None
    request = _section(result.get("request"), REQUEST_KEYS)
    response = _section(result.get("response"), RESPONSE_KEYS)
    if request is None or response is None:
        return None
    event = {key: _plain(result.get(key)) for key in EVENT_KEYS}
    event["request"] = request
    event["response"] = response
    return event
