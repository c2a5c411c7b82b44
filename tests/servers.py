"""Real servers for tests that need a whole process: a private PostgreSQL
cluster that a test may stop and start, and the OP under granian."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from .mailserver import free_port

POSTGRESQL_BIN = Path(os.environ.get("IDP_TEST_POSTGRESQL_BIN", "/usr/lib/postgresql/15/bin"))


def wait_until(condition, message: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it has not exited
    within ``timeout`` seconds (granian drains its workers first, which on a
    loaded machine can take longer than a test should wait)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PostgresCluster:
    """A PostgreSQL server of its own in a temporary directory, on a free
    loopback port. PostgreSQL refuses to run as root, so as root it runs as
    the ``postgres`` user. Made for speed, not durability (fsync off)."""

    def __init__(self) -> None:
        missing = [name for name in ("initdb", "pg_ctl") if not (POSTGRESQL_BIN / name).exists()]
        if missing:
            message = f"{', '.join(missing)} not found in {POSTGRESQL_BIN} (set IDP_TEST_POSTGRESQL_BIN)"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="idp-pg-"))
        self.data = self.directory / "data"
        self._as = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "--no-sync", "--auth=trust", "--username=postgres", "--encoding=UTF8",
                  "--locale=C", "-D", str(self.data))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.directory / "server.log"),
                  "-o", options)

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def freeze(self) -> None:
        """Stop every process of the server without closing a socket: the
        kernel still completes handshakes and acknowledges what is sent, but
        nothing answers — a hung host or a swapped-out server."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, number: int) -> None:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = [int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat")
                    if _parent(stat) == postmaster]
        for pid in [postmaster, *children]:
            os.kill(pid, number)

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def remove(self) -> None:
        subprocess.run([*self._as, str(POSTGRESQL_BIN / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data)],
                       capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(POSTGRESQL_BIN / program), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")


def _parent(stat: Path) -> int | None:
    """The parent's PID from /proc/PID/stat (field 4, after the command in parentheses)."""
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):  # the process ended meanwhile
        return None


class SilentServer:
    """Accepts TCP connections, counts them, and never says a word: a hung
    Redis, a client's jwks_uri that never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.2)  # so that close() is noticed
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.connected = threading.Condition()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.connected:
                self.connections.append(conn)
                self.connected.notify_all()

    def reached(self, connections: int) -> bool:
        """Whether ``connections`` connections arrive (within a generous bound)."""
        with self.connected:
            return self.connected.wait_for(lambda: len(self.connections) >= connections, timeout=30)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()
        for conn in self.connections:
            conn.close()


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
        stop_process(self.process)
        self._log.close()

    def _serving(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"granian exited with {self.process.returncode}; its log:\n{self.log()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False
