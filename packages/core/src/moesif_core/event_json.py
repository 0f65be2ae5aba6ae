"""The JSON of the common event in one native pass, when it is built.

Building an event in Python makes a dict of two dicts of headers, formats two times, asks the
identifier, the masks and the body check, and hands it all to orjson: about 74,000 instructions
for a Falcon GET, nearly as much as the whole request in Falcon itself; written here, 21,000. The optional C extension
``moesif_core._event_json`` writes the same bytes directly for the usual event (see the comment
at the top of ``_event_json.c`` for what that is) and answers None for anything else, which the
Python builder then builds, so an event never depends on which one ran. It needs the native
header lists and body check too, and is built and loaded the same way: from source with a C
compiler, never when ``MOESIF_PURE_PYTHON=1`` is set.

A batch is written by ``events``: each record is read under the GIL, then every event is written
(escaped, its bodies checked, joined) with the GIL released, so on a second core the app's own
threads run meanwhile instead of waiting for the sender.

Example::

    writer = native_event_writer(settings, identifier, masks, request_plain, response_plain)
    data = writer.event(record) if writer is not None else None  # None: build it in Python
    pieces, rest = writer.events(records, limit)  # rest: the records to build in Python
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import headers
from .client_ip import IP_HEADERS, client_ip
from .identify import Identifier
from .json_scan import PlainJsonCheck
from .masking import Masks
from .native import native_part
from .record import RawExchange
from .settings import Settings

__all__ = ["NATIVE", "native_event_writer"]

if TYPE_CHECKING:
    from ._event_json import Writer as _Writer

Writer: type[_Writer] | None
try:
    Writer = native_part("_event_json", 2).Writer
except ImportError:  # no compiler at install time, another interpreter, or turned off
    Writer = None

NATIVE: Final = Writer is not None


def native_event_writer(
    settings: Settings,
    identifier: Identifier,
    masks: Masks,
    request_plain: PlainJsonCheck | None,
    response_plain: PlainJsonCheck | None,
) -> _Writer | None:
    """The native writer for events of ``settings``, or None where only the Python builder applies.

    None without the extension or the native header lists, and for settings whose every event
    the Python builder must see: ``DEBUG`` (it logs what it masked and identified) and
    ``MASK_EVENT_MODEL`` (the user's function gets the event as objects).
    """
    normalize = headers.native_normalize()
    if Writer is None or normalize is None or settings.debug or settings.mask_event_model is not None:
        return None
    api_version = settings.api_version
    if api_version is not None and type(api_version) is not str:
        return None
    return Writer(
        normalize=normalize,
        api_version=api_version,
        request_masks=masks.request_headers,
        response_masks=masks.response_headers,
        identity_names=identifier.header_names,
        identify=identifier.identify,
        ip_names=IP_HEADERS,
        client_ip=client_ip,
        request_plain=request_plain,
        response_plain=response_plain,
        record_type=RawExchange,
    )
