"""Start the real service with `bentoml serve` on a free loopback port, for tests and benchmarks over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url = url
        self.proc = proc

    def kill9(self) -> None:
        """What a power cut does: SIGKILL to every process of the service at once.

        BentoML's workers start sessions of their own, so the process group
        is not enough: every descendant is found and killed.
        """
        import psutil

        family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        for process in family:
            process.kill()
        psutil.wait_procs(family, timeout=30)
        self.proc.wait()


@contextmanager
def running_service(env: dict[str, str], log_path: Path, timeout_s: float = 180, target: str = "service:FaceService"):
    """Yield a Running `bentoml serve` of `target` (its URL and process); stop its whole process group after."""
    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    # `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir when it starts, so two servers sharing a
    # home clobber each other's metrics: each gets its own home, seeing the one model store.
    home = log_path.parent / f"bentoml-home-{port}"
    home.mkdir()
    (home / "models").symlink_to(Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")).resolve() / "models")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "BENTOML_HOME": str(home), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready after {timeout_s}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield Running(url, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                Running(url, proc).kill9()
