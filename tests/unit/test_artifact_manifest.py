"""Artifact manifests: every missing, extra or changed file or link is named; a sealed folder verifies."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import verify, write_manifest


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"\x7fELF tool")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libx.so.1.2").write_bytes(b"library")
    os.symlink("libx.so.1.2", tmp_path / "lib" / "libx.so.1")
    write_manifest(str(tmp_path), {"component": "test"})
    return tmp_path


def test_sealed_artifact_verifies(artifact: Path) -> None:
    manifest, problems = verify(str(artifact))
    assert problems == []
    assert manifest is not None and manifest["component"] == "test"
    assert manifest["files"] == {"bin/tool": hashlib.sha256(b"\x7fELF tool").hexdigest(),
                                 "lib/libx.so.1.2": hashlib.sha256(b"library").hexdigest()}
    assert manifest["links"] == {"lib/libx.so.1": "libx.so.1.2"}
    assert json.loads((artifact / "manifest.json").read_text()) == manifest


def test_changed_missing_and_extra_files_are_named(artifact: Path) -> None:
    (artifact / "bin" / "tool").write_bytes(b"\x7fELF tampered")
    (artifact / "lib" / "libx.so.1.2").unlink()
    (artifact / "stray").write_text("left by someone")
    os.unlink(artifact / "lib" / "libx.so.1")
    os.symlink("elsewhere", artifact / "lib" / "libx.so.1")
    _, problems = verify(str(artifact))
    assert len(problems) == 4
    assert problems[0] == "lib/libx.so.1.2: missing"
    assert problems[1] == "stray: a file not in the manifest"
    assert problems[2].startswith("bin/tool: is ") and "the manifest says" in problems[2]
    assert problems[3] == "lib/libx.so.1: is elsewhere, the manifest says libx.so.1.2"


def test_folder_without_manifest_is_not_an_artifact(tmp_path: Path) -> None:
    manifest, problems = verify(str(tmp_path))
    assert manifest is None
    assert problems == [f"{tmp_path}: no manifest.json (not an artifact, or an interrupted build)"]


def test_unreadable_manifest_is_named(artifact: Path) -> None:
    (artifact / "manifest.json").write_text("{\"files\": ")
    _, problems = verify(str(artifact))
    assert problems[0].startswith(f"{artifact}: unreadable manifest.json")
