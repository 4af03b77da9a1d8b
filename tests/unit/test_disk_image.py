"""Disk image assembly from a small root file system tree: real sgdisk, mkfs.fat and mke2fs, no mounts."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.disk_image import (
    MIB,
    ImageError,
    assemble,
    plan_layout,
)

PARTUUIDS = {"EFI": str(uuid.uuid4()), "boot": str(uuid.uuid4()), "root": str(uuid.uuid4())}
FS_IDS = {"EFI": "1a2b3c4d", "boot": str(uuid.uuid4()), "root": str(uuid.uuid4())}


def _tree(root: Path) -> Path:
    (root / "boot/efi/EFI/BOOT").mkdir(parents=True)
    (root / "boot/efi/EFI/BOOT/BOOTAA64.EFI").write_bytes(b"MZ" + os.urandom(1000))
    (root / "boot/extlinux").mkdir()
    (root / "boot/extlinux/extlinux.conf").write_text("default a\n")
    (root / "boot/6.1.0-test/").mkdir()
    (root / "boot/6.1.0-test/Image").write_bytes(os.urandom(200_000))
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("scratch\n")
    return root


def _ext4_file(image: Path, offset: int, size: int, path: str) -> str:
    loop = subprocess.run(["losetup", "--find", "--show", "--read-only", f"--offset={offset}", f"--sizelimit={size}",
                           str(image)], capture_output=True, text=True, check=True).stdout.strip()
    try:
        return subprocess.run(["debugfs", "-R", f"cat {path}", loop], capture_output=True, text=True,
                              check=True).stdout
    finally:
        subprocess.run(["losetup", "--detach", loop], check=True)


def test_layout_leaves_room_for_boot_firmware_and_the_backup_gpt() -> None:
    partitions, size = plan_layout(16, 64, 512, 2048, PARTUUIDS)
    assert [(p.name, p.start_mib, p.size_mib, p.type_code) for p in partitions] == [
        ("boot", 16, 512, "8300"), ("EFI", 528, 64, "EF00"), ("root", 592, 2048, "8305")]
    assert size == (592 + 2048 + 1) * MIB


def test_layout_refuses_a_boot_partition_too_small_for_kernels() -> None:
    with pytest.raises(ImageError, match="boot_mib is 16: expected a whole number of MiB, at least 64"):
        plan_layout(16, 64, 16, 2048, PARTUUIDS)


def test_assembles_a_gpt_image_with_each_tree_in_its_partition(tmp_path: Path) -> None:
    rootfs = _tree(tmp_path / "rootfs")
    partitions, size = plan_layout(16, 40, 64, 256, PARTUUIDS)
    result = assemble(str(rootfs), str(tmp_path / "disk.img"), partitions, size, disk_guid=str(uuid.uuid4()),
                      fs_ids=FS_IDS)
    image = tmp_path / "disk.img"
    assert result["sha256"] == sha256_of(str(image)) and image.stat().st_size == size
    assert not (tmp_path / "disk.img.partial").exists()
    table = subprocess.run(["sgdisk", "--print", str(image)], capture_output=True, text=True, check=True).stdout
    assert "EF00  EFI" in table and "8300  boot" in table and "8305  root" in table
    attributes = subprocess.run(["sgdisk", "--attributes=1:show", str(image)], capture_output=True, text=True,
                                check=True).stdout
    assert "legacy BIOS bootable" in attributes
    boot, esp, root = partitions
    listing = subprocess.run(["mdir", "-b", "-i", f"{image}@@{esp.offset}", "::/EFI/BOOT"], capture_output=True,
                             text=True, check=True, env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout
    assert "BOOTAA64.EFI" in listing
    assert _ext4_file(image, boot.offset, boot.size, "/extlinux/extlinux.conf") == "default a\n"
    assert _ext4_file(image, root.offset, root.size, "/etc/hostname") == "scratch\n"
    # The boot partition leaves out ext4 features GRUB 2.06 cannot read.
    features = subprocess.run(["dumpe2fs", "-h", f"{image}?offset={boot.offset}"], capture_output=True, text=True,
                              check=False).stdout
    assert "Filesystem features" in features and "metadata_csum_seed" not in features


def test_refuses_a_tree_that_does_not_fit(tmp_path: Path) -> None:
    rootfs = _tree(tmp_path / "rootfs")
    (rootfs / "boot/6.1.0-test/Image").write_bytes(os.urandom(70 * MIB))
    partitions, size = plan_layout(16, 40, 64, 256, PARTUUIDS)
    with pytest.raises(ImageError, match="the boot partition is 64 MiB but its files need 71 MiB"):
        assemble(str(rootfs), str(tmp_path / "disk.img"), partitions, size, disk_guid=str(uuid.uuid4()),
                 fs_ids=FS_IDS)
    assert not (tmp_path / "disk.img").exists()
