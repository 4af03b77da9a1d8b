"""The kernel artifact check the image build runs before it uses the kernel stage's output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import write_manifest
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_artifact import ArtifactError, check_artifact

RELEASE = "7.2.13-rosenblatt"


def _artifact(root: Path) -> Path:
    (root / "dtbs/rockchip").mkdir(parents=True)
    (root / f"modules/lib/modules/{RELEASE}/kernel").mkdir(parents=True)
    contents = {"Image": b"ARM\x64" * 100, "config": b"CONFIG_DRM_ACCEL_ROCKET=m\n",
                "dtbs/rockchip/rk3588-rock-5-itx.dtb": b"\xd0\x0d\xfe\xed" * 10,
                f"modules/lib/modules/{RELEASE}/kernel/rocket.ko": b"\x7fELF" * 10}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    write_manifest(str(root), {"release": RELEASE})
    return root


def test_a_good_artifact_gives_its_release(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "kernel")
    result = check_artifact(str(root))
    assert result["release"] == RELEASE and result["files_checked"] == 4
    assert result["manifest_sha256"] == hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "kernel")
    (root / "Image").write_bytes(b"truncated")
    with pytest.raises(ArtifactError, match=r"Image: is [0-9a-f]{64}, the manifest says [0-9a-f]{64}"):
        check_artifact(str(root))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "kernel")
    (root / "dtbs/rockchip/rk3588-rock-5-itx.dtb").unlink()
    with pytest.raises(ArtifactError, match=r"dtbs/rockchip/rk3588-rock-5-itx\.dtb: missing"):
        check_artifact(str(root))


def test_a_release_mismatch_is_refused(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "kernel")
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps(dict(manifest, release="7.2.12")))
    with pytest.raises(ArtifactError, match=f"says release 7.2.12 but the modules are for {RELEASE}"):
        check_artifact(str(root))


def test_a_path_outside_the_artifact_is_refused(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "kernel")
    (tmp_path / "elsewhere").write_bytes(b"x")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["../elsewhere"] = hashlib.sha256(b"x").hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"\.\./elsewhere: missing"):
        check_artifact(str(root))


def test_a_build_without_an_image_is_checked_but_not_installable(tmp_path: Path) -> None:
    """The kernel stage's cache check: make targets without Image (dtbs, modules) still verify every file."""
    root = _artifact(tmp_path / "kernel")
    (root / "Image").unlink()
    write_manifest(str(root), {"release": RELEASE})
    assert check_artifact(str(root), "arm64", installable=False)["architecture"] == "none"
    with pytest.raises(ArtifactError, match="lacks Image"):
        check_artifact(str(root), "arm64")
    (root / "config").write_bytes(b"CONFIG_DRM_ACCEL_ROCKET=y\n")
    with pytest.raises(ArtifactError, match="config: is"):
        check_artifact(str(root), installable=False)
