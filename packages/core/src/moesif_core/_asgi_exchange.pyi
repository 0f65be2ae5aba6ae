from collections.abc import Awaitable, Callable
from typing import Any

API: int

class Exchange:
    middleware: Any
    scope: dict[str, Any]
    record: Any
    annotations: Any
    request_body: Any
    response_body: Any
    extra_headers: list[tuple[bytes, bytes]] | None
    keep: bool
    done: bool
    def keep_request_chunk(self, chunk: bytes, /) -> None: ...
    def keep_response_chunk(self, chunk: bytes, /) -> None: ...
    def keep_last_response_chunk(self, chunk: bytes, /) -> None: ...
    def finish(self, error: BaseException | None = None) -> None: ...

class Send:
    exchange: Exchange
    receive: Callable[[], Awaitable[Any]]
    def __call__(self, message: Any, /) -> Awaitable[None]: ...
    def finish(self, error: BaseException | None = None) -> None: ...

class Capture:
    def __init__(
        self,
        middleware: Any,
        steps: Any,
        make_record: Callable[[dict[str, Any], float, bool], Any] | None,
        record_from_scope: Callable[[Any, float, bool], Any],
        record_type: type,
        annotations: Any,
        request_cap: int,
        with_transaction_id: bool,
    ) -> None: ...
    def __call__(self, scope: Any, receive: Any, send: Any, /) -> Send | None: ...
