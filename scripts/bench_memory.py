"""Peak memory of every service process under the worst enrolment batch the limits allow.

    python scripts/bench_memory.py [--items 8] [--side 6000]

Starts the real service (`bentoml serve`, its own temporary gallery), sends
one `/enroll_batch` of `--items` copies of an all-black side×side PNG (about
105 KB each at 6000 px: 36 megapixels, inside the 40-megapixel limit), and
samples every process's resident memory (psutil) every 10 ms while it runs.
Prints each process's RSS before the request and its peak during it.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.local_service import scratch_service  # noqa: E402

SERVICES = ("FaceService", "Detector", "Embedder")


def label(process: psutil.Process) -> str:
    """Which service a process serves, from its command line (the BentoML arbiter serves none)."""
    cmdline = " ".join(process.cmdline())
    for name in SERVICES:
        if f"--service-name {name}" in cmdline or f"service-name={name}" in cmdline:
            return name
    return "arbiter" if "serve" in cmdline else cmdline[:60]


class Sampler(threading.Thread):
    def __init__(self, root: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak: dict[int, int] = {}
        self.stop = threading.Event()

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def run(self) -> None:
        while not self.stop.is_set():
            for process in self.processes():
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak[process.pid] = max(self.peak.get(process.pid, 0), rss)
            time.sleep(0.01)


def black_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--device", default="cpu", help="FACESERVE_DEVICE of the service")
    args = parser.parse_args()
    image = black_png(args.side)
    print(f"{args.items} x {args.side}x{args.side} black PNG, {len(image) / 1024:.0f} KB each, in one /enroll_batch")
    body = {
        "items": [
            {"image": base64.b64encode(image).decode(), "directory": "memory", "person_id": f"p{i}"}
            for i in range(args.items)
        ]
    }
    with scratch_service({"FACESERVE_DEVICE": args.device}) as service:
        sampler = Sampler(psutil.Process(service.proc.pid))
        before = {p.pid: (label(p), p.memory_info().rss) for p in sampler.processes()}
        sampler.start()
        started = time.perf_counter()
        response = httpx.post(f"{service.url}/enroll_batch", json=body, timeout=600)
        seconds = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
    codes = sorted({r["error"]["code"] for r in response.json().get("results", []) if not r["ok"]})
    print(f"HTTP {response.status_code} in {seconds:.1f} s, item errors: {codes}")
    print(f"{'process':<12} {'before MB':>10} {'peak MB':>9}")
    for pid, (name, rss) in sorted(before.items(), key=lambda kv: kv[1][0]):
        print(f"{name:<12} {rss / 2**20:10.0f} {sampler.peak.get(pid, rss) / 2**20:9.0f}")
    total = sum(sampler.peak.get(pid, rss) for pid, (_, rss) in before.items())
    print(f"{'sum of peaks':<12} {sum(rss for _, rss in before.values()) / 2**20:10.0f} {total / 2**20:9.0f}")


if __name__ == "__main__":
    main()
