"""Real servers for tests that need a whole process: the OP under granian."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from .mailserver import free_port


def wait_until(condition, message: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


class Granian:
    """The OP served as in production (README): granian, WSGI, one blocking
    thread per worker, configured through IDP_* variables. Its stderr (the
    OP's log) is kept in ``log_path``."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("granian")), "--interface", "wsgi", "--workers", str(workers),
             "--blocking-threads", "1", "--host", "127.0.0.1", "--port", str(self.port),
             "--factory", "idp:create_app"],
            env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_until(self._serving, f"granian did not start; its log:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def _serving(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"granian exited with {self.process.returncode}; its log:\n{self.log()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False
