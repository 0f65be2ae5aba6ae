"""The orchestrator's side of :mod:`benchmarks.worker`: start one, send it operations, stop it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

__all__ = ["WorkerError", "WorkerProcess"]

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """An operation failed in the worker (its message says why) or the worker died."""


class WorkerProcess:
    """A ``python -m benchmarks.worker`` subprocess; its stderr goes to ``log_path``."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(orjson.dumps({"op": op, **args}) + b"\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError as exc:
            raise WorkerError(f"worker {self.pid} is gone ({exc}); see {self.log_path}") from None
        if not line:
            raise WorkerError(f"worker {self.pid} exited during {op}; see {self.log_path}")
        answer: dict[str, Any] = orjson.loads(line)
        if not answer.pop("ok", False):
            raise WorkerError(f"{op} failed: {answer.get('error')} (log: {self.log_path})")
        return answer

    def log_lines(self) -> int:
        try:
            with open(self.log_path, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit")
            except WorkerError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
