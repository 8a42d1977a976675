"""What serving costs and what adaptive batching buys, against real `bentoml serve` processes.

    python scripts/bench_serving.py [embedder] [batching] [--seconds 20] [--baseline DIR] [--device cpu|cuda]

embedder: the Embedder service behind a thin entry service
    (scripts/embed_gateway.py), 32 concurrent clients sending one aligned chip
    per request, with adaptive batching on and off, against the bare model at
    its best batch measured in this same run.
batching: the whole API, `recognize` on single-face photos at 1, 8 and 32
    concurrent clients, once with adaptive batching and once with
    FACESERVE_ADAPTIVE_BATCHING=false: throughput, p50/p95 latency, errors,
    and each process's CPU seconds and peak RSS. With --baseline DIR (a
    checkout of an older commit, e.g. `git worktree add ../old <commit>`)
    that checkout is served and measured the same way in the same run.

Each server gets its own temporary gallery and the model store of
$BENTOML_HOME (run scripts/import_models.py first). Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.detector import FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.registry import EMBEDDERS  # noqa: E402
from models.store import resolve_model_id  # noqa: E402
from scripts.bench_models import real_chips, timed  # noqa: E402
from scripts.faces_data import single_face_photos  # noqa: E402
from scripts.local_service import ROOT, role, running_service, scratch_service  # noqa: E402

DIRECTORY = "bench-serving"
CONCURRENCY = (1, 8, 32)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.errors[error] = self.errors.get(error, 0) + 1

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self, label: str, unit: str) -> str:
        errors = sum(self.errors.values())
        return (
            f"{label:<34} {self.rate:7.2f} {unit}/s  p50 {self.quantile(0.5):7.0f} ms  "
            f"p95 {self.quantile(0.95):7.0f} ms  n={len(self.latencies)} errors={errors}"
            + (f" {self.errors}" if errors else "")
        )


# -- served vs bare embedder ----------------------------------------------------------------


async def drive_embedder(url: str, chips: np.ndarray, clients: int, seconds: float) -> Run:
    run = Run()
    bodies = [json.dumps({"chips": base64.b64encode(chip[None].tobytes()).decode()}).encode() for chip in chips]
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(
            *(http.post("/embed", content=bodies[i], headers=headers) for i in range(clients))
        )  # warm-up
        deadline = time.monotonic() + seconds

        async def loop(index: int) -> None:
            k = index
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.post("/embed", content=bodies[k % len(bodies)], headers=headers)
                    error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                run.add(time.perf_counter() - started, error)
                k += clients

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        run.wall_s = time.perf_counter() - started
    return run


def bench_embedder(seconds: float, repeats: int, device: str) -> None:
    model_id = resolve_model_id("auto")
    chips = real_chips(FaceDetector(), EMBEDDERS[model_id].geometry, 64)
    embed = load_embedder(model_id, device).embed
    bare = {b: b / timed(lambda b=b: embed(chips[:b]), repeats) for b in (1, 8, 32, 64)}
    best = max(bare, key=bare.get)
    print(f"== served vs bare embedder ({model_id}, {device})")
    for b, rate in bare.items():
        print(f"bare batch {b:<3} {rate:7.1f} faces/s")
    runs = {}
    for batching in (True, False):
        env = {"FACESERVE_ADAPTIVE_BATCHING": str(batching).lower(), "FACESERVE_DEVICE": device}
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_service(env, Path(tmp) / "embedder.log", target="scripts.embed_gateway:EmbedGateway") as svc,
        ):
            runs[batching] = asyncio.run(drive_embedder(svc.url, chips, 32, seconds))
        print(runs[batching].line(f"served, batching {'on' if batching else 'off'}, 32 clients x 1 chip", "faces"))
    print(f"served (batching on) / bare best (batch {best}): {runs[True].rate / bare[best]:.2f}")
    print(f"served embedder, batching on / off: {runs[True].rate / runs[False].rate:.2f}")


# -- adaptive batching on vs off --------------------------------------------------------------


def vga_jpeg(path: Path) -> str:
    image = Image.open(path).convert("RGB")
    image.thumbnail((640, 640))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return base64.b64encode(out.getvalue()).decode()


def drive_recognize(url: str, photos: list[str], clients: int, seconds: float) -> Run:
    run = Run()
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            k = index
            while time.monotonic() < deadline:
                body = {"image": photos[k % len(photos)], "directory": DIRECTORY}
                started = time.perf_counter()
                try:
                    response = http.post("/recognize", json=body)
                    error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                run.add(time.perf_counter() - started, error)
                k += clients

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.wall_s = time.perf_counter() - started
    return run


@dataclass
class Server:
    label: str
    root: Path
    env: dict[str, str]


def process_usage(family: list[psutil.Process], before: dict[int, float]) -> str:
    """CPU seconds since `before` and RSS of each process of a service, named by its role."""
    parts = []
    for process in family:
        try:
            name = role(process)
            cpu = sum(process.cpu_times()[:2]) - before.get(process.pid, 0.0)
            rss = process.memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            continue
        parts.append(f"{name} {cpu:.1f}s/{rss:.0f}MB")
    return ", ".join(parts)


def measure_server(server: Server, photos: list[str], seconds: float) -> dict[int, Run]:
    results = {}
    with scratch_service(server.env, root=server.root) as service:
        with httpx.Client(base_url=service.url, timeout=120) as http:
            for i, photo in enumerate(photos[::2]):  # half the photos' people are known
                http.post("/enroll", json={"image": photo, "directory": DIRECTORY, "person_id": f"p{i}"})
        drive_recognize(service.url, photos, 8, 5)  # warm-up
        for clients in CONCURRENCY:
            family = service.family()
            before = {p.pid: sum(p.cpu_times()[:2]) for p in family}
            results[clients] = run = drive_recognize(service.url, photos, clients, seconds)
            print(run.line(f"{server.label}, {clients:>2} clients", "req"), flush=True)
            print(f"    cpu/rss: {process_usage(family, before)}", flush=True)
    return results


def bench_batching(seconds: float, baseline: Path | None, device: str) -> None:
    paths = single_face_photos()[::7][:24]
    photos = [vga_jpeg(p) for p in paths]
    common = {"FACESERVE_DEVICE": device}
    servers = [
        Server("batching on", ROOT, {**common, "FACESERVE_ADAPTIVE_BATCHING": "true"}),
        Server("batching off", ROOT, {**common, "FACESERVE_ADAPTIVE_BATCHING": "false"}),
    ]
    if baseline is not None:
        servers.append(Server(f"baseline {baseline.name}", baseline.resolve(), common))
    results = {server.label: measure_server(server, photos, seconds) for server in servers}
    on, off = results["batching on"], results["batching off"]
    print("== recognize, VGA single-face photos (req/s; ratios of req/s)")
    header = f"{'clients':>7} {'on':>7} {'off':>7} {'on/off':>7} {'on p95':>8} {'off p95':>8}"
    if baseline is not None:
        header += f" {'baseline':>9} {'on/base':>8} {'base p95':>9}"
    print(header)
    for clients in CONCURRENCY:
        row = (
            f"{clients:>7} {on[clients].rate:7.2f} {off[clients].rate:7.2f} {on[clients].rate / off[clients].rate:7.2f}"
            f" {on[clients].quantile(0.95):6.0f}ms {off[clients].quantile(0.95):6.0f}ms"
        )
        if baseline is not None:
            base = results[servers[-1].label][clients]
            row += f" {base.rate:9.2f} {on[clients].rate / base.rate:8.2f} {base.quantile(0.95):7.0f}ms"
        print(row)
    single = on[1].quantile(0.5)
    print(f"p95 at 32 clients / p50 at 1 client (batching on): {on[32].quantile(0.95) / single:.1f}")
    runs = [run for per_server in results.values() for run in per_server.values()]
    print(f"errors: {sum(sum(r.errors.values()) for r in runs)} over {sum(len(r.latencies) for r in runs)} requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="embedder|batching", help="default: both")
    parser.add_argument("--seconds", type=float, default=20, help="measured time per load level")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each bare-model batch")
    parser.add_argument("--baseline", type=Path, help="another checkout to serve and measure in the same run")
    parser.add_argument("--device", default="cpu", help="FACESERVE_DEVICE of the servers and the bare models")
    args = parser.parse_args()
    parts = args.parts or ["embedder", "batching"]
    if set(parts) - {"embedder", "batching"}:
        parser.error(f"unknown part(s): {sorted(set(parts) - {'embedder', 'batching'})}")
    if "embedder" in parts:
        bench_embedder(args.seconds, args.repeats, args.device)
    if "batching" in parts:
        bench_batching(args.seconds, args.baseline, args.device)


if __name__ == "__main__":
    main()
