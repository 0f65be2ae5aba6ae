"""Process life under real servers on 127.0.0.1: SIGTERM in the middle of a burst, and uvicorn's worker processes.

Each test starts gunicorn or uvicorn as a subprocess serving a small app under ``flask_moesif`` or
``fastapi_moesif`` (settings from ``MOESIF_*`` variables, as a deployment would give them), drives a
bounded burst of calls from client threads, and checks the collector: every call a client got an
answer for was delivered, and none twice. A batch timeout of ten minutes keeps every event in
the queue until shutdown, so what arrives was delivered by the shutdown flush.
(gunicorn ``--preload -w 2`` is covered in ``test_gunicorn_preload_e2e.py``.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from moesif_core.collector import LocalCollector

pytestmark = pytest.mark.e2e

FLASK_APP = textwrap.dedent(
    """
    import os

    import flask
    from flask_moesif import MoesifFlask

    app = flask.Flask(__name__)


    @app.get("/items/<int:item_id>")
    def item(item_id):
        return {"id": item_id, "pid": os.getpid()}


    MoesifFlask(app)
    """
)

FASTAPI_APP = textwrap.dedent(
    """
    import os

    from fastapi import FastAPI
    from fastapi_moesif import MoesifMiddleware

    app = FastAPI()
    app.add_middleware(MoesifMiddleware)


    @app.get("/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id, "pid": os.getpid()}
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Burst:
    """Client threads calling ``/items/N`` until told to stop, their budget is spent, or the server goes away."""

    def __init__(self, base_url: str, threads: int, per_thread: int, *, fresh_connections: bool = False) -> None:
        self.base_url = base_url
        # A new connection per call lets the kernel hand each to any worker process.
        self._headers = {"Connection": "close"} if fresh_connections else {}
        self.answered: list[tuple[str, int]] = []  # (transaction id, worker pid)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n, per_thread), daemon=True) for n in range(threads)]

    def _run(self, n: int, budget: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            for i in range(budget):
                if self.stop.is_set():
                    return
                try:
                    response = client.get(f"/items/{n * 100_000 + i}", headers=self._headers)
                except httpx.TransportError:
                    return  # the server stopped taking calls: this client is done
                if response.status_code != 200 or response.json()["id"] != n * 100_000 + i:
                    with self._lock:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                with self._lock:
                    self.answered.append((response.headers["x-moesif-transaction-id"], response.json()["pid"]))

    def start(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join(60)

    def count(self) -> int:
        with self._lock:
            return len(self.answered)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def launch(tmp_path: Path, moesif_collector: LocalCollector) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    """``launch(source, argv, **env)``: write ``source`` as app.py, run ``argv`` (with {port}) serving it."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(source: str, argv: list[str], **env: str) -> tuple[subprocess.Popen[bytes], str]:
        (tmp_path / "app.py").write_text(source)
        port = free_port()
        environ = {
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "MOESIF_APPLICATION_ID": "test-app",
            "MOESIF_BASE_URI": moesif_collector.base_uri,
            "MOESIF_EVENT_BATCH_TIMEOUT": "600",
            "MOESIF_BATCH_SIZE": "100000",
            **env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", *(arg.format(port=port) for arg in argv)],
            cwd=tmp_path,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown can end the workers too
        )
        procs.append(proc)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    output = proc.communicate(timeout=5)[0].decode(errors="replace")
                    raise AssertionError(f"{argv[0]} did not come up:\n{output}") from None
                time.sleep(0.1)
        return proc, base_url

    yield start
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=10)


def terminate(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0].decode(errors="replace")
    # uvicorn re-raises the signal after its graceful shutdown; gunicorn exits 0.
    assert proc.returncode in (0, -signal.SIGTERM), output
    return output


def assert_every_answer_delivered_once(collector: LocalCollector, burst: Burst, threads: int) -> None:
    answered = {txn for txn, _ in burst.answered}
    assert len(answered) == len(burst.answered)
    collector.wait_for_events(len(answered), timeout=10)
    time.sleep(0.3)  # a late duplicate would arrive about now
    stored = [event["transaction_id"] for event in collector.events()]
    assert len(stored) == len(set(stored)), f"{len(stored) - len(set(stored))} events arrived twice"
    missing = answered - set(stored)
    assert not missing, f"{len(missing)} answered calls were never delivered"
    # Beyond the answered calls, at most the one call per client thread cut by the shutdown.
    assert len(stored) - len(answered) <= threads


@pytest.mark.parametrize(
    ("name", "source", "argv"),
    [
        (
            "gunicorn",
            FLASK_APP,
            ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "--graceful-timeout", "20", "app:app"],
        ),
        (
            "uvicorn",
            FASTAPI_APP,
            ["uvicorn", "app:app", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"],
        ),
    ],
)
def test_sigterm_in_the_middle_of_a_burst_delivers_every_answered_call(
    launch: Callable[..., tuple[subprocess.Popen[bytes], str]],
    moesif_collector: LocalCollector,
    name: str,
    source: str,
    argv: list[str],
) -> None:
    proc, base_url = launch(source, argv)
    burst = Burst(base_url, threads=4, per_thread=400).start()
    wait_until(lambda: burst.count() >= 150, what="the burst to get going")
    # Nothing was sent yet (ten-minute batch timeout): whatever arrives, the shutdown flush sent.
    assert moesif_collector.events() == []
    output = terminate(proc)
    burst.stop.set()
    burst.join()
    assert not burst.failures, burst.failures
    assert "Traceback" not in output, output
    assert burst.count() >= 150
    assert_every_answer_delivered_once(moesif_collector, burst, threads=4)


def test_uvicorn_with_two_workers_delivers_every_event_exactly_once(
    launch: Callable[..., tuple[subprocess.Popen[bytes], str]], moesif_collector: LocalCollector
) -> None:
    proc, base_url = launch(
        FASTAPI_APP,
        ["uvicorn", "app:app", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"],
        MOESIF_EVENT_BATCH_TIMEOUT="0.05",  # some events go out while serving, the rest at shutdown
    )
    burst = Burst(base_url, threads=4, per_thread=500, fresh_connections=True).start()
    # Both workers must have answered, or the test would show nothing about two processes.
    wait_until(lambda: len({pid for _, pid in list(burst.answered)}) == 2 and burst.count() >= 200, what="both workers")
    burst.stop.set()
    burst.join()
    assert not burst.failures, burst.failures
    terminate(proc)
    assert len({pid for _, pid in burst.answered}) == 2
    assert_every_answer_delivered_once(moesif_collector, burst, threads=0)
    assert len(moesif_collector.events()) == burst.count()
