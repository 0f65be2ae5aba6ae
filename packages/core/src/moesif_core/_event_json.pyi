from collections.abc import Callable
from typing import Any

class Writer:
    def __init__(
        self,
        *,
        normalize: Callable[[Any, str], dict[str, str] | None],
        api_version: str | None,
        request_masks: frozenset[str],
        response_masks: frozenset[str],
        identity_names: tuple[str, ...],
        identify: Callable[[dict[str, str]], tuple[str | None, str | None]],
        ip_names: tuple[str, ...],
        client_ip: Callable[[dict[str, str], Any], str | None],
        request_plain: Callable[[bytes], bool] | None,
        response_plain: Callable[[bytes], bool] | None,
        record_type: type,
    ) -> None: ...
    def event(self, record: Any, /) -> bytes | None: ...
    def events(self, records: list[Any], limit: int, /) -> list[tuple[bytes, int] | Any]: ...
