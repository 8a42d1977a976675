"""The served processes: torch lives only in the two model processes (issue #15, lean serving path)."""

from __future__ import annotations

from pathlib import Path

import httpx


def libraries(pid: int) -> set[str]:
    return {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}


def role(cmdline: list[str]) -> str:
    line = " ".join(cmdline)
    for name in ("Detector", "Embedder"):
        if f"--service-name {name}" in line:
            return name
    return "api" if "--worker-id" in line else "serve"


def test_only_model_processes_load_torch(service):
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200
    loaded = {role(p.cmdline()): "libtorch_cpu.so" in libraries(p.pid) for p in service.family()}
    assert loaded == {"serve": False, "api": False, "Detector": True, "Embedder": True}
