"""The image and the virtual board, booted once per session from the image through edk2 + GRUB."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import played, rosenblatt_ok, run_playbook
from tests.kernel_stage import shipped_kernel_artifact
from tests.virtual.conftest import INVENTORY, VirtualBoard, start_board, stop_board


def _recap(output: str) -> str:
    return output.rsplit("PLAY RECAP", maxsplit=1)[-1]


def _sha256_of(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while length > 0:
            chunk = stream.read(min(length, 1 << 22))
            assert chunk, f"{path} ended early"
            digest.update(chunk)
            length -= len(chunk)
    return digest.hexdigest()


def test_image_manifest_describes_the_image(virtual_board: VirtualBoard) -> None:
    manifest = virtual_board.image_manifest()
    path = virtual_board.image_path
    assert manifest["size_bytes"] == path.stat().st_size
    assert manifest["sha256"] == _sha256_of(path, path.stat().st_size)
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


def test_virtual_up_again_changes_nothing(virtual_board: VirtualBoard) -> None:
    """`rosenblatt virtual up` (default board: virtual-uefi) on the running board: image found, QEMU running."""
    for check in ([], ["--check"]):
        started = time.monotonic()
        outcome = rosenblatt_ok("-i", INVENTORY, *check, "virtual", "up")
        assert outcome["runs"][0]["hosts"][virtual_board.host]["changed"] == 0, played(outcome)[-3000:]
        assert list(outcome["runs"][0]["hosts"]) == [virtual_board.host]
        assert time.monotonic() - started < 120
        assert check or f"{virtual_board.host}: running" in played(outcome)


def test_provision_writes_the_board_image_to_its_medium(virtual_board: VirtualBoard, tmp_path: Path) -> None:
    """`rosenblatt provision`: the image this session boots (found in the cache) written to the board's medium,
    here a loop device standing in for an SD card, verified; the second run finds it written."""
    manifest = virtual_board.image_manifest()
    backing = tmp_path / "sd-card.bin"
    with backing.open("wb") as stream:
        stream.truncate(manifest["size_bytes"] + (64 << 20))
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    flash = {"method": "block-device", "device": device, "size_bytes": backing.stat().st_size}
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / f"{virtual_board.host}.yml").write_text(f"---\nboard_flash: {json.dumps(flash)}\n")
    try:
        runs = []
        for _ in range(2):
            started = time.monotonic()
            outcome = rosenblatt_ok("-i", str(inventory), "provision", virtual_board.host, timeout=1800)
            runs.append((time.monotonic() - started, played(outcome), outcome["runs"][0]["hosts"]))
        assert f"{virtual_board.host}: written" in runs[0][1], runs[0][1][-3000:]
        assert _sha256_of(Path(device), manifest["size_bytes"]) == manifest["sha256"]
        assert f"{virtual_board.host}: already-written" in runs[1][1], runs[1][1][-3000:]
        assert runs[1][2][virtual_board.host]["changed"] == 0
        print(json.dumps({"provision_seconds": round(runs[0][0], 1), "again_seconds": round(runs[1][0], 1),
                          "image_bytes": manifest["size_bytes"]}))
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)


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
    assert re.search(r"virtual-uboot: stopped\s+\((powerdown|terminate) in", stopped), stopped


@pytest.mark.slow
def test_image_with_the_kernel_stage_kernel_and_a_static_address() -> None:
    """boltzmann's kind of image: the kernel stage's own kernel (not Debian's) and a static address from
    host_vars, built, then booted through edk2 + GRUB; watchdog and rocket module from that kernel."""
    artifact = shipped_kernel_artifact()
    release = json.loads((artifact / "manifest.json").read_text())["release"]
    chosen = ("-e", f"board_image_kernel_artifact={artifact}")
    started = time.monotonic()
    image = run_playbook("-i", INVENTORY, "--limit", "virtual-mainline", "playbooks/image.yml", *chosen,
                         timeout=3600)
    build_seconds = time.monotonic() - started
    assert image.returncode == 0, image.stdout[-6000:]
    started = time.monotonic()
    again = run_playbook("-i", INVENTORY, "--limit", "virtual-mainline", "playbooks/image.yml", *chosen)
    found_seconds = time.monotonic() - started
    assert again.returncode == 0 and "changed=0" in _recap(again.stdout), again.stdout[-3000:]
    board = start_board("virtual-mainline", *chosen)
    try:
        manifest = board.image_manifest()
        assert (manifest["kernel"]["source"], manifest["kernel"]["release"]) == ("artifact", release)
        assert board.command("uname", "-r").strip() == release
        interfaces = json.loads(board.command("ip", "-j", "-4", "address", "show", "scope", "global"))
        [address] = [address for interface in interfaces for address in interface["addr_info"]]
        assert (address["local"], address["prefixlen"]) == ("10.0.2.15", 24)
        assert "dynamic" not in address and address["valid_life_time"] == 0xFFFFFFFF  # no DHCP lease
        assert board.command("ip", "-4", "route", "show", "default").startswith("default via 10.0.2.2 ")
        assert board.command("cat", "/sys/class/watchdog/watchdog0/identity").strip() == "i6300ESB timer"
        assert board.command("cat", "/sys/class/watchdog/watchdog0/state").strip() == "active"
        assert board.command("modinfo", "--field", "name", "rocket").strip() == "rocket"
        probe = board.playbook("playbooks/probe.yml", "-e", '{"npu_probe_expected_verdicts": ["no-npu-in-dt"]}')
        assert probe.returncode == 0, probe.stdout[-4000:]
        assert f"kernel {release}, boot chain uefi-grub" in " ".join(probe.stdout.split())
        print(json.dumps({"release": release, "image_build_seconds": round(build_seconds, 1),
                          "image_found_seconds": round(found_seconds, 1),
                          "boot_to_ssh_seconds": round(board.start_seconds, 1),
                          "image_bytes": manifest["size_bytes"]}))
    finally:
        stop_board("virtual-mainline")
