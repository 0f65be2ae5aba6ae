"""The local collector's SQLite store: everything accepted is written here before it is acknowledged.

Events are kept as the JSON text that arrived plus a few indexed columns (route, status, user,
latency...) so that filters, ``tail`` and the summary never parse the blobs. One connection is
shared under a lock: SQLite serialises writers anyway, and a batch is one transaction, so a 2xx
answer means the whole batch is on disk (or in memory) and a failure means none of it is.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

__all__ = ["ENTITY_KINDS", "EventRow", "EventStore", "StoreError", "event_columns", "percentile", "summarize"]

ENTITY_KINDS: Final = ("users", "companies", "subscriptions")
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    time TEXT,
    method TEXT,
    route TEXT,
    uri TEXT,
    status INTEGER,
    latency_ms REAL,
    user_id TEXT,
    company_id TEXT,
    direction TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_route ON events(route);
CREATE INDEX IF NOT EXISTS events_status ON events(status);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id);
CREATE INDEX IF NOT EXISTS events_company ON events(company_id);
CREATE INDEX IF NOT EXISTS events_direction ON events(direction);
CREATE TABLE IF NOT EXISTS entities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT,
    received REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_kind ON entities(kind, id);
"""

_ROW_COLUMNS: Final = "id, received, time, method, route, uri, status, latency_ms, user_id, company_id, direction"


class StoreError(Exception):
    """The database file cannot be opened or is not a collector database; the message says which."""


@dataclass(frozen=True, slots=True)
class EventRow:
    """The indexed columns of one stored event (what ``tail`` and the web page list show)."""

    id: int
    received: float
    time: str | None
    method: str | None
    route: str | None
    uri: str | None
    status: int | None
    latency_ms: float | None
    user_id: str | None
    company_id: str | None
    direction: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received": self.received,
            "time": self.time,
            "method": self.method,
            "route": self.route,
            "uri": self.uri,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "user_id": self.user_id,
            "company_id": self.company_id,
            "direction": self.direction,
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        return None


def event_columns(event: dict[str, Any]) -> tuple[Any, ...]:
    """The indexed columns of ``event``: (time, method, route, uri, status, latency_ms, user_id, company_id, direction).

    Never raises: a field of the wrong shape becomes NULL, because validation is the server's job
    and the store must accept whatever the server let through.
    """
    request = event.get("request")
    response = event.get("response")
    if not isinstance(request, dict):
        request = {}
    if not isinstance(response, dict):
        response = {}
    uri = request.get("uri") if isinstance(request.get("uri"), str) else None
    route: str | None = None
    if uri is not None:
        try:
            route = urlsplit(uri).path or "/"
        except ValueError:
            route = None
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    started = _parse_time(request.get("time"))
    ended = _parse_time(response.get("time"))
    latency: float | None = None
    if started is not None and ended is not None:
        try:
            latency = round((ended - started).total_seconds() * 1000.0, 3)
        except TypeError:  # one aware, one naive
            latency = None
    method = request.get("verb") if isinstance(request.get("verb"), str) else None
    req_time = request.get("time") if isinstance(request.get("time"), str) else None
    direction = event.get("direction") if isinstance(event.get("direction"), str) else None
    return (req_time, method, route, uri, status, latency, _text(event.get("user_id")), _text(event.get("company_id")), direction)


_ENTITY_KEYS: Final = {"users": "user_id", "companies": "company_id", "subscriptions": "subscription_id"}


class EventStore:
    """SQLite storage for events, users, companies and subscriptions.

    ``path=None`` keeps everything in memory (gone when the store is closed); a path creates or
    reopens a file in WAL mode so ``moesif-collector tail`` can read it while a server writes.

    Example::

        store = EventStore(None)
        store.add_events([{"request": {"uri": "/a", "verb": "GET", "time": "2026-01-01T00:00:00.000"}}])
        store.events(path="/a")
    """

    def __init__(self, path: str | None = None, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if path is None:
                self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            elif readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
            else:
                self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            if not readonly:
                # Events are ~2 KB each: big pages keep rows and their indexes dense, which roughly halves insert
                # time; it only takes effect on a new database, before WAL is switched on.
                self._db.execute("PRAGMA page_size=16384")
                self._db.execute("PRAGMA cache_size=-65536")
            if path is not None and not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "PRAGMA synchronous=NORMAL"
                )  # durable across a crash of this process, the case that matters here
            if readonly:
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "events" not in tables:
                    raise StoreError(f"{path} is not a moesif-collector database (no events table)")
            else:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open collector database {path or ':memory:'}: {exc}") from exc

    # -- writing -------------------------------------------------------------------------

    def add_events(self, events: Sequence[dict[str, Any]]) -> int:
        """Store ``events`` in one transaction; return the id of the last one (0 when empty)."""
        now = time.time()
        rows = [(now, *event_columns(e), orjson.dumps(e).decode()) for e in events]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO events (received, time, method, route, uri, status, latency_ms, user_id, company_id,"
                    " direction, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                last = self._db.execute("SELECT max(id) FROM events").fetchone()[0] or 0
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(last)

    def add_entities(self, kind: str, items: Sequence[dict[str, Any]]) -> None:
        """Store users, companies or subscriptions (``kind`` from :data:`ENTITY_KINDS`) in one transaction."""
        key = _ENTITY_KEYS[kind]
        now = time.time()
        rows = [(kind, _text(item.get(key)), now, orjson.dumps(item).decode()) for item in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO entities (kind, key, received, body) VALUES (?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM entities")
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _where(
        after: int | None, path: str | None, status: int | str | None, user_id: str | None, direction: str | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        if path is not None and path != "":
            clauses.append("route = ?")
            args.append(path)
        if status is not None and status != "":
            text = str(status).lower()
            if len(text) == 3 and text.endswith("xx") and text[0].isdigit():  # a status class such as "5xx"
                low = int(text[0]) * 100
                clauses.append("status >= ? AND status < ?")
                args += [low, low + 100]
            else:
                clauses.append("status = ?")
                args.append(int(status))
        if user_id is not None and user_id != "":
            clauses.append("user_id = ?")
            args.append(user_id)
        if direction is not None and direction != "":
            clauses.append("lower(direction) = lower(?)")
            args.append(direction)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def events(
        self,
        path: str | None = None,
        status: int | str | None = None,
        user_id: str | None = None,
        direction: str | None = None,
        after: int | None = None,
    ) -> list[dict[str, Any]]:
        """The stored events matching every given filter, as parsed JSON, in arrival order."""
        where, args = self._where(after, path, status, user_id, direction)
        with self._lock:
            bodies = self._db.execute(f"SELECT body FROM events{where} ORDER BY id", args).fetchall()
        return [orjson.loads(b[0]) for b in bodies]

    def rows(
        self,
        after: int | None = None,
        path: str | None = None,
        status: int | str | None = None,
        user_id: str | None = None,
        direction: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[EventRow]:
        """The indexed columns of matching events; ``newest_first`` with ``limit`` gives the latest ones."""
        where, args = self._where(after, path, status, user_id, direction)
        sql = f"SELECT {_ROW_COLUMNS} FROM events{where} ORDER BY id {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [EventRow(*r) for r in rows]

    def event(self, event_id: int) -> tuple[EventRow, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_ROW_COLUMNS}, body FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return EventRow(*row[:-1]), orjson.loads(row[-1])

    def count_events(
        self, path: str | None = None, status: int | str | None = None, user_id: str | None = None, direction: str | None = None
    ) -> int:
        where, args = self._where(None, path, status, user_id, direction)
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM events{where}", args).fetchone()[0])

    def entities(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            bodies = self._db.execute("SELECT body FROM entities WHERE kind = ? ORDER BY id", (kind,)).fetchall()
        return [orjson.loads(b[0]) for b in bodies]

    def count_entities(self, kind: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entities WHERE kind = ?", (kind,)).fetchone()[0])

    def summary(self, top: int = 10) -> dict[str, Any]:
        """Requests per route, error rate, p50/p95 latency and top users over every stored event."""
        with self._lock:
            rows = self._db.execute("SELECT method, route, status, latency_ms, user_id FROM events").fetchall()
        return summarize(rows, top=top)


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without floats drifting
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def summarize(
    rows: Iterable[tuple[str | None, str | None, int | None, float | None, str | None]], top: int = 10
) -> dict[str, Any]:
    """Fold (method, route, status, latency_ms, user_id) rows into the summary the CLI and web page show.

    An error is a status >= 400; events without a status count as requests but not as errors.
    """
    per_route: dict[tuple[str, str], dict[str, Any]] = {}
    users: dict[str, int] = {}
    latencies: list[float] = []
    total = errors = 0
    for method, route, status, latency, user in rows:
        total += 1
        key = (method or "?", route or "?")
        entry = per_route.setdefault(key, {"count": 0, "errors": 0, "latencies": []})
        entry["count"] += 1
        if status is not None and status >= 400:
            errors += 1
            entry["errors"] += 1
        if latency is not None:
            entry["latencies"].append(latency)
            latencies.append(latency)
        if user is not None:
            users[user] = users.get(user, 0) + 1
    latencies.sort()
    routes = []
    for (method, route), entry in sorted(per_route.items(), key=lambda kv: (-kv[1]["count"], kv[0])):
        lat = sorted(entry["latencies"])
        routes.append(
            {
                "method": method,
                "route": route,
                "count": entry["count"],
                "errors": entry["errors"],
                "error_rate": entry["errors"] / entry["count"],
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
            }
        )
    top_users = [{"user_id": u, "count": n} for u, n in sorted(users.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    return {
        "total": total,
        "errors": errors,
        "error_rate": (errors / total) if total else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "routes": routes,
        "top_users": top_users,
    }
