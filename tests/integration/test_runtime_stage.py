"""Runtime stage: llama.cpp from the llama-cpp-python sdist, cross-built for the A76, installed, run under qemu."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import (
    LLAMA_CPP_COMMIT,
    LLAMA_CPP_PYTHON_VERSION,
)
from tests.conftest import CACHE, REPO, real_input, run_playbook

LOCAL = "tests/inventory/local"
# make test builds the two programs the verification needs first; the slow tier builds them all.
FAST_TARGETS = '{"runtime_build_targets": ["llama-completion", "llama-bench"]}'


@pytest.fixture(scope="module")
def sdist() -> Path:
    return real_input("llama-cpp-sdist")


def recap(stdout: str) -> str:
    return stdout.rsplit("PLAY RECAP", maxsplit=1)[-1]


def runtime_state() -> dict:
    return json.loads((CACHE / "standin" / "state" / "runtime.json").read_text())


def test_build_install_run_and_rerun_is_a_no_op(sdist: Path) -> None:
    first = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "-e", FAST_TARGETS, timeout=3600)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    state = runtime_state()
    assert state["llama_cpp_ref"] == LLAMA_CPP_COMMIT
    assert state["ggml_version"] == "0.25.3"
    installed = Path(state["path"])
    assert (installed.parent / "current").resolve() == installed
    manifest = json.loads((installed / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"bin/llama-completion", "bin/llama-bench", "bin/npu-probe", "LICENSE.llama.cpp"}
    assert manifest["links"]["lib/libnpu.so.0"] == "libnpu.so.0.1.0"
    assert manifest["links"]["lib/libllama.so.0"].startswith("libllama.so.0.")
    assert manifest["files"][f"lib/{manifest['links']['lib/libggml-base.so.0']}"]
    assert "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16" in manifest["cmake_options"]
    elf = subprocess.run(["file", "-L", str(installed / "bin" / "llama-completion")], capture_output=True, text=True,
                         check=True).stdout
    assert "ARM aarch64" in elf and "dynamically linked" in elf

    second = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "-e", FAST_TARGETS)
    assert second.returncode == 0, second.stdout[-4000:]
    assert "changed=0" in recap(second.stdout), recap(second.stdout)
    assert "building llama.cpp" not in second.stdout


def test_installed_llama_runs_the_real_model_under_qemu(sdist: Path) -> None:
    model = real_input("gemma-gguf")
    installed = CACHE / "standin" / "runtime" / "current"
    assert (installed / "bin" / "llama-completion").exists(), "run the build test first (same module)"
    result = subprocess.run(
        ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", "max", str(installed / "bin" / "llama-completion"),
         "-m", str(model), "-p", "The capital of France is", "-n", "6", "--temp", "0", "--seed", "1", "-t", "2",
         "-no-cnv", "--no-warmup"],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("The capital of France is")
    assert len(result.stdout) > len("The capital of France is") + 3  # it generated text
    assert "DOTPROD = 1" in result.stderr  # built for the A76's dot product instructions


def test_installed_npu_probe_passes_its_self_test_on_the_software_model_under_qemu() -> None:
    installed = CACHE / "standin" / "runtime" / "current"
    assert (installed / "bin" / "npu-probe").exists(), "run the build test first (same module)"
    result = subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(installed / "bin" / "npu-probe"),
                             "--model"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "model"
    assert [core["functional"] for core in report["cores"]] == [True, True, True]


def test_check_mode_on_a_fresh_controller_builds_and_installs_nothing(sdist: Path, tmp_path: Path) -> None:
    result = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "--check", "-e", f"runtime_build_archive={sdist}",
                          env={"ROSENBLATT_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"would build llama.cpp {LLAMA_CPP_COMMIT}" in result.stdout
    assert f"would install {tmp_path}/runtime/artifacts/" in result.stdout
    assert not any(tmp_path.iterdir())


def test_the_pinned_commit_is_the_one_the_tested_sdist_vendors(sdist: Path) -> None:
    """The production pin and the tests' source are one llama.cpp: the sdist's own changelog names the commit."""
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/CHANGELOG.md")
        assert member is not None
        changelog = member.read().decode()
    section = changelog.split(f"## [{LLAMA_CPP_PYTHON_VERSION}]", 1)[1].split("\n## [", 1)[0]
    vendored = re.findall(r"ggml-org/llama\.cpp@([0-9a-f]{7,40})", section)
    assert vendored and LLAMA_CPP_COMMIT.startswith(vendored[-1]), (vendored, LLAMA_CPP_COMMIT)
    pins = yaml.safe_load((REPO / "inventory/group_vars/all.yml").read_text())
    assert pins["rosenblatt_llama_cpp_ref"] == LLAMA_CPP_COMMIT


def git_repository(path: Path) -> str:
    """A bare repository with one commit holding a ggml/CMakeLists.txt; returns the commit."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    work = path.with_name("work")
    subprocess.run(["git", "clone", "-q", str(path), str(work)], check=True, capture_output=True)
    (work / "ggml").mkdir()
    (work / "ggml" / "CMakeLists.txt").write_text("project(ggml)\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "ggml"], check=True)
    subprocess.run([*git, "commit", "-qm", "llama.cpp"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD"], check=True, capture_output=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_a_commit_pin_takes_the_git_path_without_a_tag(tmp_path: Path) -> None:
    """Production's source: git at a 40-digit commit, which no ls-remote of tags can find."""
    repository = tmp_path / "llama.cpp.git"
    commit = git_repository(repository)
    source = {"runtime_build_source_type": "git", "runtime_build_git_url": f"file://{repository}"}
    cache = {"ROSENBLATT_CACHE": str(tmp_path)}
    result = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "--check", "-e",
                          json.dumps({**source, "runtime_build_git_ref": commit}), env=cache)
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"(git-{commit[:15]}) for" in " ".join(result.stdout.split()), result.stdout[-3000:]
    missing = "0" * 39 + "1"
    result = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "--tags", "runtime-build", "-e",
                          json.dumps({**source, "runtime_build_git_ref": missing}), env=cache)
    assert result.returncode != 0
    assert f"Failed to checkout {missing}" in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "runtime" / "artifacts").exists()


@pytest.mark.parametrize(("extra", "message"), [
    ({"runtime_build_cross_prefix": "nonexistent-linux-gnu-"}, "nonexistent-linux-gnu-g++ is not on localhost"),
    ({"runtime_build_archive": "/nonexistent/llama.tar.gz"},
     "runtime_build_archive /nonexistent/llama.tar.gz is not a file on localhost"),
    ({"runtime_build_mode": "sideways"}, "runtime_build_mode"),
    ({"runtime_build_source_type": "svn"}, "runtime_build_source_type"),
])
def test_bad_input_fails_naming_it(sdist: Path, extra: dict, message: str) -> None:
    result = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "-e", json.dumps(extra))
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]


def test_archive_without_llama_cpp_at_the_subdir_is_refused(sdist: Path, tmp_path: Path) -> None:
    result = run_playbook("-i", LOCAL, "playbooks/runtime.yml", "-e", "runtime_build_archive_subdir=vendor/nothing",
                          "-e", f"runtime_build_archive={sdist}", env={"ROSENBLATT_CACHE": str(tmp_path)}, timeout=900)
    assert result.returncode != 0
    assert "has no ggml/CMakeLists.txt: runtime_build_archive_subdir (vendor/nothing)" in result.stdout
    assert not (tmp_path / "runtime" / "artifacts").exists()
