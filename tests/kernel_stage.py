"""Helpers for the kernel stage tests: running playbooks/kernel.yml on the test inventory and reading artifacts."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from tests.conftest import CACHE, REPO, run_playbook

INVENTORY = str(REPO / "tests" / "inventory" / "kernel")


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


def artifact_of(output: str) -> Path:
    """The artifact folder the kernel stage's output names."""
    match = re.search(r"rock5itx: kernel \S+\s+(?:built|present) at (\S+)", output.replace("\n        ", " "))
    assert match, output[-3000:]
    return Path(match.group(1))


def isolated_vars(root: Path) -> dict[str, str]:
    """Work, ccache and artifact folders of one test: the shared cache keeps only the unpacked source."""
    return {"kernel_build_work_root": str(root / "work"), "kernel_build_ccache_dir": str(root / "ccache"),
            "kernel_build_artifact_root": str(root / "artifacts"),
            "kernel_build_controller_artifact_root": str(root / "artifacts")}


FULL_BUILD_ROOT = CACHE / "tests" / "kernel-full-build"


def full_build_vars(root: Path = FULL_BUILD_ROOT) -> dict:
    """The shipped kernel (Image, modules, dtbs, shipped fragments) built in the slow tier's folders."""
    return {**isolated_vars(root), "kernel_build_targets": ["Image", "modules", "dtbs"],
            "kernel_build_single_modules": []}


def shipped_kernel_artifact(timeout: int = 6 * 3600) -> Path:
    """The kernel stage's artifact of the shipped inputs: built (incrementally, from the slow tier's warm
    build folder and ccache when they exist) or found unchanged."""
    result, _ = run_kernel_stage(full_build_vars(), timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:]
    return artifact_of(result.stdout)
