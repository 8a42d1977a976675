"""Start the real service with `bentoml serve` on a free loopback port, for tests and benchmarks over HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, url: str, proc: subprocess.Popen, log_path: Path) -> None:
        self.url = url
        self.proc = proc
        self.log_path = log_path
        self.seen: list[psutil.Process] = []

    def remember_family(self) -> None:
        """Note the family while the main process lives: after a `kill -9` of it alone, its workers have no parent
        to be found through."""
        self.seen = self.family()

    def family(self) -> list[psutil.Process]:
        """The `bentoml serve` process and every descendant.

        BentoML's workers start sessions of their own, so the process group
        is not enough: a worker outside it would keep serving and holding the
        port after its parent is gone.
        """
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill9(self) -> None:
        """What a power cut does: SIGKILL to every process of the service at once."""
        family = self.family()
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(family, timeout=30)
        self.proc.wait()

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM to the whole family, found before any of it exits; SIGKILL to whatever outlives `grace_s`."""
        family = list({*self.family(), *(p for p in self.seen if p.is_running())})
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(family, timeout=grace_s)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=30)
        self.proc.wait()


@contextmanager
def running_service(
    env: dict[str, str],
    log_path: Path,
    timeout_s: float = 180,
    target: str = "service:FaceService",
    root: Path = ROOT,
):
    """Yield a Running `bentoml serve` of `target` in checkout `root` (its URL, process and log); stop its whole
    process family after. Another checkout (an older commit) runs with this one's environment and model store."""
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
            cwd=root,
            env={**os.environ, "BENTOML_HOME": str(home), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    running = Running(url, proc, log_path)
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
        running.remember_family()
        yield running
    finally:
        running.stop()


@contextmanager
def scratch_service(env: dict[str, str], root: Path = ROOT):
    """`running_service` for benchmarks: keys off and a fresh gallery, both in a temporary folder with its log."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = {"FACESERVE_AUTH": "disabled", "FACESERVE_GALLERY_PATH": str(Path(tmp) / "gallery")}
        with running_service({**scratch, **env}, Path(tmp) / "serve.log", root=root) as service:
            yield service


def role(process: psutil.Process) -> str:
    """What a process of a served family does: Detector, Embedder, api (the entry service's worker) or serve
    (`bentoml serve` itself), read from its command line."""
    line = " ".join(process.cmdline())
    for name in ("Detector", "Embedder"):
        if f"--service-name {name}" in line:
            return name
    return "api" if "--worker-id" in line else "serve"
