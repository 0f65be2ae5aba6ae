from collections.abc import Callable, Iterable
from typing import Any

API: int

class Exchange:
    middleware: Any
    environ: dict[str, Any]
    record: Any
    annotations: Any
    request_body: Any
    response_body: Any
    extra_headers: dict[str, str] | None
    keep: bool
    done: bool
    def respond(self, code: int, headers: list[tuple[str, str]], /) -> list[tuple[str, str]]: ...
    def keep_chunk(self, chunk: bytes, /) -> None: ...
    def keep_response_chunk(self, chunk: bytes, /) -> None: ...
    def keep_last_chunk(self, chunk: bytes, /) -> None: ...
    def keep_last_response_chunk(self, chunk: bytes, /) -> None: ...
    def finish(self, error: BaseException | None = None) -> None: ...

class Capture:
    def __init__(
        self,
        middleware: Any,
        steps: Any,
        make_record: Callable[[dict[str, Any], float, bool], Any] | None,
        record_from_environ: Callable[[dict[str, Any], float, bool], Any],
        record_type: type,
        annotations: Any,
        skip: Callable[..., Any] | None,
        request_cap: int,
        with_transaction_id: bool,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any], /) -> Iterable[bytes]: ...
    def begin(self, environ: dict[str, Any], /) -> Exchange | None: ...
