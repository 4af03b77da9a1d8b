"""The image and the virtual board, booted once per session from the image through edk2 + GRUB."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time

import pytest

from tests.conftest import run_playbook
from tests.virtual.conftest import INVENTORY, VirtualBoard, start_board, stop_board


def _recap(output: str) -> str:
    return output.rsplit("PLAY RECAP", maxsplit=1)[-1]


def test_image_manifest_describes_the_image(virtual_board: VirtualBoard) -> None:
    manifest = virtual_board.image_manifest()
    path = virtual_board.image_path
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 22), b""):
            digest.update(chunk)
    assert manifest["sha256"] == digest.hexdigest()
    assert manifest["size_bytes"] == path.stat().st_size
    assert manifest["kernel"]["source"] == "debian"
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+-arm64", manifest["kernel"]["release"])
    for package in ("openssh-server", "python3", "kexec-tools", "initramfs-tools", "grub-efi-arm64-bin"):
        assert package in manifest["packages"], package
    assert [(p["name"], p["mountpoint"]) for p in manifest["partitions"]] == [
        ("boot", "/boot"), ("EFI", "/boot/efi"), ("root", "/")]
    table = subprocess.run(["sgdisk", "--print", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^\s+2\s+.*EF00\s+EFI$", table, re.MULTILINE), table
    assert re.search(r"^\s+3\s+.*8305\s+root$", table, re.MULTILINE), table


def test_probe_on_the_virtual_board(virtual_board: VirtualBoard) -> None:
    release = virtual_board.image_manifest()["kernel"]["release"]
    result = virtual_board.playbook("playbooks/probe.yml", "-e", '{"npu_probe_expected_verdicts": ["no-npu-in-dt"]}')
    assert result.returncode == 0, result.stdout[-4000:]
    words = " ".join(result.stdout.split())  # the YAML callback folds long messages
    assert f"{virtual_board.host}: NPU no-npu-in-dt" in words
    assert f"kernel {release}, boot chain uefi-grub, Debian GNU/Linux 12 (bookworm)" in words
    assert "changed=0" in _recap(result.stdout)


def test_the_board_runs_the_image_kernel_and_layout(virtual_board: VirtualBoard) -> None:
    manifest = virtual_board.image_manifest()
    release = manifest["kernel"]["release"]
    assert virtual_board.command("uname", "-r").strip() == release
    assert virtual_board.command("hostname").strip() == manifest["hostname"]
    mounts = virtual_board.command("findmnt", "-rno", "TARGET,SOURCE,FSTYPE")
    for target, fstype in (("/", "ext4"), ("/boot", "ext4"), ("/boot/efi", "vfat")):
        assert re.search(rf"^{re.escape(target)} /dev/vda\d {fstype}$", mounts, re.MULTILINE), mounts
    boot = virtual_board.command("ls", f"/boot/{release}")
    assert set(boot.split()) >= {"Image", "initrd.img", "config", "dtbs"}
    cmdline = virtual_board.command("cat", "/proc/cmdline")
    assert "panic=10" in cmdline and f"root=PARTUUID={manifest['partitions'][2]['partuuid']}" in cmdline
    assert virtual_board.command("cat", "/sys/firmware/efi/fw_platform_size").strip() == "64"


def test_the_watchdog_is_armed(virtual_board: VirtualBoard) -> None:
    assert virtual_board.command("cat", "/sys/class/watchdog/watchdog0/identity").strip() == "i6300ESB timer"
    assert virtual_board.command("cat", "/sys/class/watchdog/watchdog0/state").strip() == "active"


def test_the_serial_console_is_logged(virtual_board: VirtualBoard) -> None:
    release = virtual_board.image_manifest()["kernel"]["release"]
    console = (virtual_board.run_dir / "console.log").read_text(errors="replace")
    assert f"Linux version {release}" in console
    assert "login:" in console


def test_rerunning_image_and_start_changes_nothing(virtual_board: VirtualBoard) -> None:
    started = time.monotonic()
    result = virtual_board.playbook("playbooks/virtual-board.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "changed=0" in _recap(result.stdout), result.stdout[-3000:]
    assert f"{virtual_board.host}: running" in result.stdout
    assert time.monotonic() - started < 120
    check = virtual_board.playbook("playbooks/virtual-board.yml", "--check")
    assert check.returncode == 0 and "changed=0" in _recap(check.stdout), check.stdout[-3000:]


def test_boot_timeout_stops_qemu_with_a_clear_error(virtual_board: VirtualBoard) -> None:
    # The other chain's host, with a timeout no boot can meet: QEMU must be stopped, the error must say why.
    result = run_playbook("-i", INVENTORY, "--limit", "virtual-uboot", "playbooks/virtual-board.yml",
                          "-e", "virtual_board_boot_timeout=3", "-e", "virtual_board_fresh=true")
    assert result.returncode != 0
    assert "no SSH server on 127.0.0.1:2232 within 3 s" in result.stdout
    assert "QEMU was stopped" in result.stdout
    run_dir = virtual_board.run_dir.parent / "virtual-uboot"
    assert not (run_dir / "qemu.pid").exists()
    survivors = subprocess.run(["pgrep", "-f", str(run_dir / "qemu.pid")], capture_output=True, text=True, check=False)
    assert survivors.stdout == ""


@pytest.mark.slow
def test_uboot_extlinux_chain_boots_the_same_image() -> None:
    board = start_board("virtual-uboot")
    try:
        release = board.image_manifest()["kernel"]["release"]
        result = board.playbook("playbooks/probe.yml", "-e", '{"npu_probe_expected_verdicts": ["no-npu-in-dt"]}')
        assert result.returncode == 0, result.stdout[-4000:]
        assert f"kernel {release}, boot chain uboot-extlinux" in " ".join(result.stdout.split())
        assert board.command("uname", "-r").strip() == release
        assert "U-Boot" in (board.run_dir / "console.log").read_text(errors="replace")
        print(json.dumps({"chain": "uboot-extlinux", "start_seconds": round(board.start_seconds, 1)}))
    finally:
        stopped = stop_board("virtual-uboot")
    assert stopped.returncode == 0, stopped.stdout
    assert re.search(r"virtual-uboot: stopped\s+\((powerdown|terminate) in", stopped.stdout), stopped.stdout
