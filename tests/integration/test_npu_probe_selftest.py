"""rknpu_facts running the real npu-probe (userspace/npu-probe) on the software NPU model.

npu-probe is built from this checkout with CMake; the model is selected explicitly with
NPU_BACKEND=model (npu-probe never falls back to it on its own), and NPU_MODEL_FAULT makes one
lane's job fail the way the 7.2 driver fails silently, so `functional: false` is produced by the
canary check of the real library, not by a stub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import probe
from tests.conftest import BIN, REPO
from tests.unit.sysroot_tree import (
    Tree,
    accel_node,
    bind_cores,
    kernel,
    load_rocket,
    recorded_rocket_version,
    rk3588_board,
)

LOCAL = "tests/inventory/local"
INSTALLED = "/usr/local/bin/npu-probe"


@pytest.fixture(scope="session")
def npu_probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("npu-probe-build")
    for command in (["cmake", "-S", str(REPO / "userspace"), "-B", str(build), "-G", "Ninja",
                     "-DCMAKE_BUILD_TYPE=Release"],
                    ["nice", "cmake", "--build", str(build), "--target", "npu-probe", "-j", str(os.cpu_count() or 1)]):
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return build / "npu-probe"


def board_with_npu_probe(root: Path, binary: Path) -> Tree:
    tree = Tree(root)
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    bind_cores(tree)
    accel_node(tree)
    target = tree.root / INSTALLED.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target)  # its RUNPATH still finds libnpu in the build tree
    return tree


def test_model_self_test_makes_every_core_functional(tmp_path: Path, npu_probe_binary: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tree = board_with_npu_probe(tmp_path, npu_probe_binary)
    monkeypatch.setenv("NPU_BACKEND", "model")
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path=INSTALLED)
    assert facts["verdict"] == "ready", facts["selftest"]
    assert facts["selftest"]["backend"] == "model"
    assert facts["selftest"]["lanes"] == 3
    assert [core["functional"] for core in facts["bound_cores"]] == [True, True, True]
    assert all(core["mismatches"] == 0 and core["gops"] > 0 for core in facts["selftest"]["cores"])


@pytest.mark.parametrize("fault", ["reject", "timeout"])
def test_a_lost_job_on_one_core_marks_only_that_core(tmp_path: Path, npu_probe_binary: Path,
                                                     monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    tree = board_with_npu_probe(tmp_path, npu_probe_binary)
    monkeypatch.setenv("NPU_BACKEND", "model")
    monkeypatch.setenv("NPU_MODEL_FAULT", f"1:{fault}")
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path=INSTALLED)
    assert facts["verdict"] == "selftest-failed"
    assert [core["functional"] for core in facts["bound_cores"]] == [True, False, True]
    assert "canary" in facts["selftest"]["cores"][1]["error"]


def test_without_a_device_npu_probe_fails_instead_of_using_the_model(tmp_path: Path, npu_probe_binary: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tree = board_with_npu_probe(tmp_path, npu_probe_binary)
    monkeypatch.delenv("NPU_BACKEND", raising=False)
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path=INSTALLED)
    assert facts["verdict"] == "selftest-failed"
    assert facts["selftest"]["ok"] is False
    assert facts["selftest"]["status"] == "no-device"
    assert [core["functional"] for core in facts["bound_cores"]] == [False, False, False]


def test_npu_probe_json_on_the_model(npu_probe_binary: Path) -> None:
    result = subprocess.run([str(npu_probe_binary), "--model", "--json", "--fp16", "--m", "40", "--n", "100",
                             "--k", "70"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["driver"]["name"] == "rocket-model"
    assert report["selftest"] == {"precision": "int8", "m": 40, "n": 100, "k": 70, "iterations": 3}
    assert [core["functional"] for core in report["cores"]] == [True, True, True]
    assert all(core["max_abs_error"] == 0 for core in report["cores"])  # int8 is exact
    assert [core["functional"] for core in report["cores_fp16"]] == [True, True, True]


def test_rknpu_facts_module_reports_functional_cores(tmp_path: Path, npu_probe_binary: Path) -> None:
    tree = board_with_npu_probe(tmp_path / "board", npu_probe_binary)
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                       NPU_BACKEND="model", NPU_MODEL_FAULT="2:reject")
    result = subprocess.run([str(BIN / "ansible"), "-i", LOCAL, "controller", "-m", "rosenblatt.pipeline.rknpu_facts",
                             "-a", f"root={tree.root} npu_probe_path={INSTALLED}"],
                            cwd=REPO, env=environment, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("controller | SUCCESS => "), result.stdout
    facts = json.loads(result.stdout.split(" => ", 1)[1])["ansible_facts"]["rknpu"]
    # the fixture's accel node is a plain file: the real DRM_IOCTL_VERSION fails first in the verdict chain,
    # but the self-test still ran and its per-core result is in the facts
    assert facts["verdict"] == "ioctl-failed"
    assert [core["functional"] for core in facts["bound_cores"]] == [True, True, False]
