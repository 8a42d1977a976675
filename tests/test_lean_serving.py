"""The served processes: torch lives only in the two model processes (issue #15, lean serving path)."""

from __future__ import annotations

from pathlib import Path

import httpx

from scripts.local_service import role


def libraries(pid: int) -> set[str]:
    return {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}


def test_only_model_processes_load_torch(service):
    assert httpx.get(f"{service.url}/readyz", timeout=10).status_code == 200
    loaded = {role(p): "libtorch_cpu.so" in libraries(p.pid) for p in service.family()}
    assert loaded == {"serve": False, "api": False, "Detector": True, "Embedder": True}
