"""Shared fixtures: the real data in ../shared/data, and real vecdb servers on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The evaluation data folder beside the checkout; skips when it is absent."""
    if not (SHARED_DATA / "scifact" / "docs.npy").exists():
        pytest.skip(f"evaluation data not found at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


class ServerProcess:
    """A ``vecdb serve`` subprocess on 127.0.0.1 with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until it has bound its port."""
        log = self.log_path.open("ab")
        start = log.tell()
        # reuse the port of an earlier run so clients keep working across restarts
        port = str(self.port) if self.port else "0"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vecdb.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                port,
                "--host",
                "127.0.0.1",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[start:].decode(errors="replace")
            found = re.search(r"serving on [^ ]+:(\d+)", text)
            if found:
                self.port = int(found.group(1))
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"vecdb serve exited early:\n{text}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("vecdb serve did not start in time")

    def kill(self) -> None:
        """SIGKILL the server (no chance to flush or close anything)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM the server and return its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Make servers whose data directories live in this test's tmp_path; killed at the end."""
    started: list[ServerProcess] = []

    class Factory(ServerProcess):
        def __init__(
            self,
            name: str = "data",
            env: Mapping[str, str] | None = None,
            args: tuple[str, ...] = (),
        ) -> None:
            super().__init__(tmp_path / name, env, args)
            started.append(self)

    yield Factory
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def vecdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a real vecdb server (subprocess, loopback, no keys) for the session."""
    server = ServerProcess(tmp_path_factory.mktemp("vecdb") / "data").start()
    yield server.address
    server.terminate()
