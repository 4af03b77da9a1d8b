"""Helpers for the kernel stage tests: running playbooks/kernel.yml on the test inventory and reading artifacts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO, run_playbook

INVENTORY = str(REPO / "tests" / "inventory" / "kernel")
CACHE = Path(os.environ.get("ROSENBLATT_CACHE", Path.home() / ".cache" / "rosenblatt"))


def run_kernel_stage(extra_vars: dict, *args: str, timeout: int = 1800) -> tuple[subprocess.CompletedProcess, float]:
    """playbooks/kernel.yml on the test inventory with extra vars; the result and its wall time."""
    started = time.monotonic()
    result = run_playbook("-i", INVENTORY, "playbooks/kernel.yml", "-e", json.dumps(extra_vars), *args,
                          env={"ROSENBLATT_CACHE": str(CACHE)}, timeout=timeout)
    return result, time.monotonic() - started


def recap(result: subprocess.CompletedProcess) -> dict[str, int]:
    match = re.search(r"^rock5itx\s+:\s+(.*)$", result.stdout, flags=re.M)
    assert match, result.stdout[-3000:]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def artifact_of(result: subprocess.CompletedProcess) -> Path:
    match = re.search(r"rock5itx: kernel \S+\s+(?:built|present) at (\S+)", result.stdout.replace("\n        ", " "))
    assert match, result.stdout[-3000:]
    return Path(match.group(1))


def isolated_vars(root: Path) -> dict[str, str]:
    """Work, ccache and artifact folders of one test: the shared cache keeps only the unpacked source."""
    return {"kernel_build_work_root": str(root / "work"), "kernel_build_ccache_dir": str(root / "ccache"),
            "kernel_build_artifact_root": str(root / "artifacts"),
            "kernel_build_controller_artifact_root": str(root / "artifacts")}
