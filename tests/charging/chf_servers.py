"""The charging service as a separate process (``telbill charging serve``), for multi-process and kill -9 tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chf_helpers import TOKEN

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ServeProcess:
    """``telbill charging serve`` on a free port of 127.0.0.1 over ``db``; a context manager."""

    def __init__(self, tmp: Path, db: Path, subscriptions: Path, rates: Path, name: str = "chf",
                 flush_seconds: float = 0.5) -> None:
        self.tmp, self.db, self.name = tmp, db, name
        self.port_file = tmp / f"{name}.port"
        self.token_file = tmp / "token"
        self.token_file.write_text(TOKEN)
        self.landing = tmp / "landing"
        self.args = [sys.executable, "-m", "pipelines.cli", "--landing", str(self.landing), "charging", "serve",
                     "--db", str(db), "--port", "0", "--port-file", str(self.port_file), "--token-file",
                     str(self.token_file), "--subscriptions", str(subscriptions), "--rates", str(rates),
                     "--flush-seconds", str(flush_seconds)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        self.port_file.unlink(missing_ok=True)
        self.log = open(self.tmp / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args, cwd=PROJECT_ROOT, stdout=self.log, stderr=self.log,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"charging server did not start: {(self.tmp / f'{self.name}.log').read_text()}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(self.port_file.read_text())}"
        return self

    def kill9(self) -> None:
        """SIGKILL: no shutdown hook runs, whatever was in flight is cut."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
