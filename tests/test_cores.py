"""Model processes size torch's thread pool from the cores they may use and wait passively (models/cores)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.cores import available_cores

ROOT = Path(__file__).resolve().parents[1]
AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("max 100000\n", AFFINITY), ("100000 100000\n", 1), ("50000 100000\n", 1), ("150000 100000\n", min(2, AFFINITY))],
)
def test_a_cgroup_quota_caps_the_cores(tmp_path, cpu_max, cores):
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    assert available_cores(quota) == cores


def test_without_a_cgroup_file_the_affinity_counts(tmp_path):
    assert available_cores(tmp_path / "absent") == AFFINITY


def run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_use_cores_sets_the_pool_and_passive_waiting_before_torch_loads():
    out = run(
        "import os, sys; from models import cores; assert 'torch' not in sys.modules; n = cores.use_cores(1); "
        "import torch; print(n, torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])"
    )
    assert out == "1 1 PASSIVE"


def test_an_operators_wait_policy_is_kept():
    assert (
        run(
            "import os; from models import cores; cores.use_cores(); print(os.environ['OMP_WAIT_POLICY'])",
            OMP_WAIT_POLICY="ACTIVE",
        )
        == "ACTIVE"
    )


def test_importing_the_service_does_not_load_torch():
    """`bentoml serve`'s own process and the API process import service.py; only the model processes load torch."""
    assert (
        run(
            "import sys, service; print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'facenet_pytorch', 'torchvision'}))"
        )
        == "[]"
    )
