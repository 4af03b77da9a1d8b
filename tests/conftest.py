"""Shared test helpers: running playbooks the way a user does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.cache_root import cache_root

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = BIN / "rosenblatt"
CACHE = cache_root()
# The runtime stage built natively for the controller (x86_64 here): what the backend and verification
# tests run; the programs they use.
NATIVE_RUNTIME = {"runtime_build_mode": "native", "runtime_build_dir": str(CACHE / "runtime-x86"),
                  "runtime_build_targets": ["test-backend-ops", "llama-perplexity", "llama-completion", "llama-bench"]}


def run_playbook(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """ansible-playbook from the project's venv, from the repository root, with the project's ansible.cfg."""
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    environment.update(env or {})
    return subprocess.run([str(BIN / "ansible-playbook"), *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


def rosenblatt(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The `rosenblatt` command as installed by the project's setup; its runs go to a scratch folder unless
    env names one (ROSENBLATT_RUNS)."""
    environment = dict(os.environ, ROSENBLATT_RUNS=str(Path(tempfile.gettempdir()) / "rosenblatt-test-runs"))
    environment.update(env or {})
    return subprocess.run([str(CLI), *args], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)


def played(outcome: dict) -> str:
    """What the playbooks of a `rosenblatt --json` run printed, as ansible-playbook would have shown it."""
    return "".join(path.read_text() for run in outcome["runs"]
                   for path in sorted(Path(run["run_dir"]).glob("artifacts/*/stdout")))


def rosenblatt_ok(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> dict:
    """A `rosenblatt --json` command that must succeed; the outcome it printed as JSON."""
    result = rosenblatt("--json", *args, env=env, timeout=timeout)
    try:
        outcome = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"not JSON ({error}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}") from error
    assert result.returncode == 0, played(outcome)[-6000:] + result.stderr[-3000:]
    return outcome


def real_input(name: str) -> Path:
    """A real test input from the registries, materialised in the cache by tools/test_inputs.py."""
    result = subprocess.run([sys.executable, "tools/test_inputs.py", name], cwd=REPO, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def build_runtime(variables: dict) -> Path:
    """The runtime stage's build (playbooks/runtime.yml --tags runtime-build): its artifact, bin/ and lib/."""
    real_input("llama-cpp-sdist")
    result = run_playbook("-i", "tests/inventory/local", "playbooks/runtime.yml", "--tags", "runtime-build",
                          "-e", json.dumps(variables), timeout=5400)
    assert result.returncode == 0, result.stdout[-5000:]
    match = re.search(r"(?:built|present) at (/[^\s']+)", " ".join(result.stdout.split()))
    assert match, result.stdout[-3000:]
    artifact = Path(match.group(1))
    assert (artifact / "lib/libggml-rknpu.so").is_file() and (artifact / "bin/libggml-cpu.so").is_file()
    return artifact


@pytest.fixture
def reports_dir(tmp_path: Path) -> Path:
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest.fixture
def small_filesystem(tmp_path: Path):
    """A real 32 MiB file system (tmpfs, mounted as root) to run out of space on."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)
