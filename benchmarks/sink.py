"""A counting collector: ``python -m benchmarks.sink`` serves the Collector API on 127.0.0.1 and only counts.

The project's local collector parses and stores every event in SQLite, which costs it more CPU per
event than our sender spends building one; on a 2-core machine it, not the sender, would set the
pace. To measure the sender, this sink does the least an honest receiver can: it un-gzips each
batch, checks that it is a JSON array of valid JSON values (msgspec, without building them) and
counts its elements. A batch that is not valid JSON is answered 400 and not counted.

It speaks just enough HTTP/1.1 (keep-alive, ``Content-Length``) for our sender and the incumbents',
and answers ``GET /api/events?limit=1`` with ``{"last_id": <events counted>}`` like the local
collector, so :class:`benchmarks.collector_process.CollectorProcess` drives either.
"""

from __future__ import annotations

import argparse
import asyncio
import zlib

import msgspec
import orjson

__all__ = ["main"]

_BATCH = msgspec.json.Decoder(list[msgspec.Raw])
_CONFIG = orjson.dumps({"sample_rate": 100, "user_sample_rate": {}, "company_sample_rate": {}, "regex_config": []})


class _Counts:
    events = 0
    rejected = 0


def _answer(status: int, body: bytes, extra: str = "") -> bytes:
    reason = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode("ascii") + body


def _handle(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    if method == "POST" and path.startswith("/v1/events/batch"):
        try:
            if "gzip" in headers.get("content-encoding", ""):
                body = zlib.decompress(body, 47)
            _Counts.events += len(_BATCH.decode(body))
        except (zlib.error, msgspec.DecodeError):
            _Counts.rejected += 1
            return _answer(400, b'{"error":"not a JSON array"}')
        return _answer(201, b"{}", "X-Moesif-Config-ETag: sink\r\n")
    if method == "POST" and path.startswith("/v1/"):
        return _answer(201, b"{}")
    if method == "GET" and path.startswith("/v1/config"):
        return _answer(200, _CONFIG, "X-Moesif-Config-ETag: sink\r\n")
    if method == "GET" and path.startswith("/v1/rules"):
        return _answer(200, b"[]")
    if method == "GET" and path.startswith("/api/events"):
        return _answer(200, orjson.dumps({"last_id": _Counts.events, "rejected": _Counts.rejected}))
    return _answer(404, b"{}")


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            writer.write(_handle(method, target, headers, body))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", port, limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    print(f"benchmark sink listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(_main(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
