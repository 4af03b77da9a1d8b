"""The model stage through ansible-playbook: the real Q4_K_M GGUF from PyPI, served over loopback HTTP."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import real_input, run_playbook
from tests.support.http_server import FileServer

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


@pytest.fixture(scope="module")
def gemma() -> Path:
    return real_input("gemma-gguf")


def stage(tmp_path: Path, url: str, sha256: str, *extra: str, board_dir: Path | None = None):
    variables = {"rosenblatt_model_url": url, "rosenblatt_model_sha256": sha256,
                 "model_cache_dir": str(tmp_path / "cache"),
                 "model_install_dir": str(board_dir or tmp_path / "board"),
                 "rosenblatt_state_dir": str(tmp_path / "state")}
    return run_playbook("-i", "tests/inventory/local", "playbooks/model.yml", "-e", json.dumps(variables), *extra)


def recap(output: str) -> str:
    return output.rsplit("PLAY RECAP", maxsplit=1)[-1]


def test_download_install_and_rerun_is_a_no_op(tmp_path: Path, gemma: Path) -> None:
    with FileServer(gemma) as server:
        first = stage(tmp_path, server.url, GEMMA_SHA256)
        assert first.returncode == 0, first.stdout[-3000:]
        second = stage(tmp_path, server.url, GEMMA_SHA256)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "changed=0" in recap(second.stdout)
    assert server.requests == [None]
    installed = tmp_path / "board" / gemma.name
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == GEMMA_SHA256
    state = json.loads((tmp_path / "state" / "model.json").read_text())
    assert state == {"component": "model", "path": str(installed), "sha256": GEMMA_SHA256}


def test_check_mode_on_a_fresh_controller_writes_nothing(tmp_path: Path, gemma: Path) -> None:
    with FileServer(gemma) as server:
        result = stage(tmp_path, server.url, GEMMA_SHA256, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "would copy" in result.stdout
    assert server.requests == []
    assert not (tmp_path / "cache").exists() and not (tmp_path / "board").exists()


def test_checksum_mismatch_fails_and_keeps_nothing(tmp_path: Path, gemma: Path) -> None:
    wrong = "0123456789abcdef" * 4
    with FileServer(gemma) as server:
        result = stage(tmp_path, server.url, wrong)
    assert result.returncode != 0
    assert f"expected {wrong}, got {GEMMA_SHA256}; the download was removed" in result.stdout
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
    assert not (tmp_path / "board").exists()


def test_truncated_download_fails_then_resumes(tmp_path: Path, gemma: Path) -> None:
    with FileServer(gemma) as server:
        server.cut_after = 100 << 20
        interrupted = stage(tmp_path, server.url, GEMMA_SHA256)
        assert interrupted.returncode != 0
        assert "run again to resume" in interrupted.stdout
        resumed = stage(tmp_path, server.url, GEMMA_SHA256)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert server.requests == [None, f"bytes={100 << 20}-"]
    assert hashlib.sha256((tmp_path / "board" / gemma.name).read_bytes()).hexdigest() == GEMMA_SHA256


def test_board_without_space_is_refused_before_copying(tmp_path: Path, gemma: Path, small_filesystem: Path) -> None:
    result = stage(tmp_path, str(gemma), GEMMA_SHA256, board_dir=small_filesystem / "models")
    assert result.returncode != 0
    assert f"controller: not enough space in {small_filesystem}/models: the model needs 242 MiB" in result.stdout
    assert list((small_filesystem / "models").iterdir()) == []
