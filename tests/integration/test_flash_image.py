"""Writing an image to a block device (a loop device here): written and verified, and refused whenever a
guard must refuse (mounted, wrong size, wrong serial, the controller's root disk, a bad image)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.block_device import root_disks
from tests.conftest import run_playbook

DEVICE_BYTES = 64 * 1024 * 1024


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "medium.bin"
    with backing.open("wb") as stream:
        stream.truncate(DEVICE_BYTES)
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    yield device
    subprocess.run(["losetup", "--detach", device], check=True)


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 4096))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _inventory(tmp_path: Path, flash: dict) -> str:
    host = {"board_model": "radxa-rock-5b", "board_soc": "rk3588", "board_ram_gib": 8, "board_boot_media": "sd",
            "board_boot_chain": "uboot-extlinux", "board_distribution": "debian", "board_address": "192.0.2.10",
            "board_shared": False, "board_flash": flash}
    pins = yaml.safe_load((Path(__file__).resolve().parents[2] / "inventory/group_vars/all.yml").read_text())
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": pins, "hosts": {"scratch": host}}}))
    return str(path)


def _flash(tmp_path: Path, flash: dict, image: tuple[Path, str], *extra: str) -> subprocess.CompletedProcess:
    return run_playbook("-i", _inventory(tmp_path, flash), "playbooks/flash-image.yml", "--tags", "provision",
                        "-e", f"flash_image_image={image[0]}", "-e", f"flash_image_sha256={image[1]}", *extra)


def _head(device: str, length: int) -> bytes:
    with open(device, "rb") as stream:
        return stream.read(length)


def test_writes_the_image_and_verifies_it(tmp_path: Path, loop_device: str, image: tuple[Path, str]) -> None:
    flash = {"method": "block-device", "device": loop_device, "size_bytes": DEVICE_BYTES}
    check = _flash(tmp_path, flash, image, "--check")
    assert check.returncode == 0, check.stdout
    assert f"would write {image[0].stat().st_size} bytes of {image[0]}" in check.stdout
    assert _head(loop_device, 4096) == bytes(4096), "check mode wrote to the device"
    result = _flash(tmp_path, flash, image)
    assert result.returncode == 0, result.stdout
    assert "scratch: written" in result.stdout
    assert hashlib.sha256(_head(loop_device, image[0].stat().st_size)).hexdigest() == image[1]
    again = _flash(tmp_path, flash, image)
    assert again.returncode == 0, again.stdout
    assert "scratch: already-written" in again.stdout
    assert "changed=0" in again.stdout.split("PLAY RECAP")[1]


def test_refuses_a_mounted_device(tmp_path: Path, loop_device: str, image: tuple[Path, str]) -> None:
    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    subprocess.run(["mount", loop_device, str(mount_point)], check=True)
    try:
        flash = {"method": "block-device", "device": loop_device, "size_bytes": DEVICE_BYTES}
        result = _flash(tmp_path, flash, image)
        assert result.returncode != 0
        assert f"refusing to write {loop_device}: {loop_device} is mounted on {mount_point}" in result.stdout
        # The mounted file system is still there (ext4 magic), the image is not.
        assert _head(loop_device, 1082)[1080:] == b"\x53\xef"
        assert hashlib.sha256(_head(loop_device, image[0].stat().st_size)).hexdigest() != image[1]
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_refuses_a_device_of_another_size(tmp_path: Path, loop_device: str, image: tuple[Path, str]) -> None:
    result = _flash(tmp_path, {"method": "block-device", "device": loop_device, "size_bytes": DEVICE_BYTES * 2}, image)
    assert result.returncode != 0
    assert f"size is {DEVICE_BYTES} bytes, the inventory says {DEVICE_BYTES * 2}" in result.stdout
    assert _head(loop_device, 4096) == bytes(4096)


def test_refuses_a_device_with_another_serial(tmp_path: Path, loop_device: str, image: tuple[Path, str]) -> None:
    flash = {"method": "block-device", "device": loop_device, "size_bytes": DEVICE_BYTES, "serial": "SD-1234"}
    result = _flash(tmp_path, flash, image)
    assert result.returncode != 0
    assert "serial is None, the inventory says 'SD-1234'" in result.stdout
    assert _head(loop_device, 4096) == bytes(4096)


def test_refuses_the_controllers_root_disk(tmp_path: Path, image: tuple[Path, str]) -> None:
    # In check mode: should the guard fail, nothing is written all the same.
    [disk] = sorted(root_disks())
    size = int(Path(f"/sys/class/block/{disk}/size").read_text()) * 512
    flash = {"method": "block-device", "device": f"/dev/{disk}", "size_bytes": size}
    result = _flash(tmp_path, flash, image, "--check")
    assert result.returncode != 0
    assert f"/dev/{disk} holds the controller's root file system" in result.stdout


def test_refuses_an_image_that_does_not_match_its_manifest(tmp_path: Path, loop_device: str,
                                                           image: tuple[Path, str]) -> None:
    flash = {"method": "block-device", "device": loop_device, "size_bytes": DEVICE_BYTES}
    result = _flash(tmp_path, flash, (image[0], "0" * 64))
    assert result.returncode != 0
    assert f"image {image[0]} has sha256 {image[1]}, its manifest says {'0' * 64}: not written" in result.stdout
    assert _head(loop_device, 4096) == bytes(4096)


def test_refuses_a_partition(tmp_path: Path, loop_device: str, image: tuple[Path, str]) -> None:
    subprocess.run(["sgdisk", "--new=1:1M:+8M", loop_device], check=True, capture_output=True)
    subprocess.run(["partx", "--add", loop_device], check=False, capture_output=True)
    partition = f"{loop_device}p1"
    assert Path(partition).exists()
    result = _flash(tmp_path, {"method": "block-device", "device": partition, "size_bytes": 8 << 20}, image)
    assert result.returncode != 0
    assert f"{partition} is a partition (of /dev/{Path(loop_device).name}): give the whole disk" in result.stdout


def test_rkdeveloptool_needs_the_users_loader(tmp_path: Path, image: tuple[Path, str]) -> None:
    flash = {"method": "rkdeveloptool", "loader": str(tmp_path / "rk3588_spl_loader.bin"), "size_bytes": DEVICE_BYTES}
    result = _flash(tmp_path, flash, image)
    assert result.returncode != 0
    assert f"board_flash.loader {tmp_path / 'rk3588_spl_loader.bin'} does not exist" in result.stdout


def test_bad_flash_input_is_named(tmp_path: Path, image: tuple[Path, str]) -> None:
    result = _flash(tmp_path, {"method": "dd", "size_bytes": DEVICE_BYTES}, image)
    assert result.returncode != 0
    assert "scratch: board_flash is {'method': 'dd', 'size_bytes': 67108864} (expected {method: block-device" \
        in result.stdout
