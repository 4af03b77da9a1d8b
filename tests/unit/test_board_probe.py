"""Boot chain, loader, distribution and initramfs tool, from trees laid out as each system has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.board_probe import LOADER_INFO, probe

from .sysroot_tree import Tree, kernel

BREDOS_OS_RELEASE = 'NAME="BredOS"\nPRETTY_NAME="BredOS"\nID=bredos\nID_LIKE=arch\n'
DEBIAN_OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n'


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def test_boltzmann_edk2_grub_bredos(tree: Tree) -> None:
    kernel(tree, release="7.0.0-rc3-ARCH+")
    tree.dt_node("/", model="Radxa ROCK 5 ITX", compatible=["radxa,rock-5-itx", "rockchip,rk3588"])
    tree.file("/sys/firmware/efi/fw_platform_size", "64\n")
    tree.file("/sys/class/dmi/id/bios_vendor", "EDK II\n")
    tree.file("/sys/class/dmi/id/bios_version", "v1.1\n")
    tree.file("/boot/grub/grub.cfg", "menuentry 'BredOS' {\n  linux /vmlinuz-linux root=UUID=x\n"
                                     "  devicetree /dtbs/rockchip/rk3588-rock-5-itx.dtb\n}\n")
    tree.file("/etc/os-release", BREDOS_OS_RELEASE)
    tree.file("/usr/bin/mkinitcpio", "#!/bin/bash\n", mode=0o755)
    tree.file("/usr/bin/dracut", "#!/bin/bash\n", mode=0o755)
    tree.file("/proc/meminfo", "MemTotal:       32617804 kB\nMemFree: 1 kB\n")
    tree.file("/dev/watchdog0", b"")
    for cpu in range(8):  # A55 cores 0-3 left on schedutil, the A76 cores 4-7 set to performance
        tree.file(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor",
                  "performance\n" if cpu >= 4 else "schedutil\n")
    tree.file("/sys/devices/system/cpu/cpufreq/policy0/scaling_governor", "schedutil\n")
    tree.file("/sys/class/devfreq/fdab0000.npu/cur_freq", "1000000000\n")
    tree.file("/sys/class/devfreq/fdab0000.npu/governor", "rknpu_ondemand\n")
    tree.file("/sys/class/devfreq/fb000000.gpu/cur_freq", "300000000\n")
    tree.file("/run/systemd/system/.keep", "")
    facts = probe(str(tree.root))
    assert facts["firmware"] == {"kind": "edk2", "uefi": True, "vendor": "EDK II", "version": "v1.1"}
    assert facts["boot_loader"] == {"name": "grub", "config": "/boot/grub/grub.cfg"}
    assert facts["boot_chain"] == "uefi-grub"
    assert facts["device_tree_source"] == "grub-devicetree"
    assert facts["distribution"]["family"] == "arch"
    assert facts["initramfs_tool"] == "mkinitcpio"  # the distribution's own tool, though dracut is there too
    assert facts["memory_mib"] == 31853
    assert facts["watchdogs"] == ["/dev/watchdog0"]
    assert facts["kernel_release"] == "7.0.0-rc3-ARCH+"
    assert list(facts["cpu_governors"]) == [f"cpu{cpu}" for cpu in range(8)]
    assert facts["cpu_governors"]["cpu4"] == "performance" and facts["cpu_governors"]["cpu3"] == "schedutil"
    assert facts["npu_devfreq"] == {"name": "fdab0000.npu", "cur_freq_hz": 1000000000, "governor": "rknpu_ondemand"}
    assert facts["systemd"] is True


def test_uboot_extlinux_debian(tree: Tree) -> None:
    kernel(tree)
    tree.dt_node("/", model="linux,dummy-virt", compatible=["linux,dummy-virt"])
    tree.dt_node("/chosen", **{"u-boot,version": "U-Boot 2023.01+dfsg-2+deb12u1"})
    tree.file("/boot/extlinux/extlinux.conf", "default good\nlabel good\n  linux /boot/vmlinuz\n"
                                              "  fdtdir /boot/dtbs\n")
    tree.file("/etc/os-release", DEBIAN_OS_RELEASE)
    tree.file("/usr/sbin/update-initramfs", "#!/bin/sh\n", mode=0o755)
    tree.file("/usr/sbin/kexec", "", mode=0o755)
    facts = probe(str(tree.root))
    assert facts["firmware"]["kind"] == "u-boot"
    assert facts["firmware"]["version"] == "U-Boot 2023.01+dfsg-2+deb12u1"
    assert facts["boot_chain"] == "uboot-extlinux"
    assert facts["device_tree_source"] == "extlinux-fdt"
    assert facts["distribution"] == {"id": "debian", "name": "Debian GNU/Linux 13 (trixie)", "version_id": "13",
                                     "family": "debian"}
    assert facts["initramfs_tool"] == "initramfs-tools"
    assert facts["kexec"] == "/usr/sbin/kexec"
    assert facts["cpu_governors"] == {} and facts["npu_devfreq"] is None and facts["systemd"] is False


def test_uefi_systemd_boot_from_loader_info(tree: Tree) -> None:
    tree.file("/sys/firmware/efi/fw_platform_size", "64\n")
    tree.file(LOADER_INFO, b"\x06\x00\x00\x00" + "systemd-boot 257.4\0".encode("utf-16-le"))
    tree.file("/boot/loader/loader.conf", "default arch.conf\n")
    tree.file("/boot/grub/grub.cfg", "")  # a leftover GRUB config does not win over what booted
    facts = probe(str(tree.root))
    assert facts["boot_loader"] == {"name": "systemd-boot", "config": "/boot/loader/loader.conf"}
    assert facts["boot_chain"] == "uefi-systemd-boot"
    assert facts["firmware"]["kind"] == "uefi"


def test_uboot_script(tree: Tree) -> None:
    tree.dt_node("/", model="Radxa ROCK 5B")
    tree.file("/boot/boot.scr", b"\x27\x05\x19\x56")
    facts = probe(str(tree.root))
    assert facts["boot_chain"] == "uboot-script"
    assert facts["device_tree_source"] == "firmware"


def test_empty_tree_is_unknown_not_an_error(tree: Tree) -> None:
    facts = probe(str(tree.root))
    assert facts["boot_chain"] == "unknown"
    assert facts["distribution"]["family"] == "unknown"
    assert facts["initramfs_tool"] is None
    assert facts["device_tree_source"] == "none"
    assert facts["memory_mib"] is None
