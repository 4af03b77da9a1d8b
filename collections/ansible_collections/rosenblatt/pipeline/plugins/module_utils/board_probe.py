# Copyright: rosenblatt developers
# MIT License
"""How a board boots and what it runs: the facts every board-side stage branches on.

boltzmann boots edk2-rk3588 (UEFI) then a GRUB whose grub.cfg its distribution generates; the virtual
boards boot U-Boot and extlinux.conf, edk2 and GRUB, or edk2 and Debian's own GRUB. `boot_chain` is the
boot chain descriptor (module_utils/boot_chains.py) whose detection rule matches; the rollout stage takes
its trial-boot method from it, and the initramfs tool from `initramfs_tool`, never from a guess.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boot_chains import (
    BOOT_CHAINS,
    config_author,
    descriptor,
    detect,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.sysroot import SysRoot, kernel_release

DT_BASE = "/proc/device-tree"
# systemd-boot (and other BLS loaders) export LoaderInfo in this vendor GUID.
LOADER_INFO = "/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
GRUB_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/efi/EFI/BOOT/grub.cfg",
                "/boot/efi/grub/grub.cfg")
EXTLINUX_CONFIGS = ("/boot/extlinux/extlinux.conf", "/extlinux/extlinux.conf")
SYSTEMD_BOOT_CONFIGS = ("/boot/loader/loader.conf", "/boot/efi/loader/loader.conf", "/efi/loader/loader.conf")
UBOOT_SCRIPTS = ("/boot/boot.scr", "/boot.scr")
INITRAMFS_TOOLS = (("mkinitcpio", "mkinitcpio"), ("dracut", "dracut"), ("update-initramfs", "initramfs-tools"))
BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin")
DISTRIBUTION_FAMILIES = {"arch": "arch", "debian": "debian", "ubuntu": "debian", "fedora": "redhat",
                         "rhel": "redhat", "centos": "redhat", "suse": "suse", "alpine": "alpine"}


def _first_existing(sysroot: SysRoot, paths: tuple[str, ...]) -> str | None:
    return next((path for path in paths if sysroot.exists(path)), None)


def _which(sysroot: SysRoot, program: str) -> str | None:
    return _first_existing(sysroot, tuple(directory + "/" + program for directory in BIN_DIRS))


def probe_firmware(sysroot: SysRoot) -> dict[str, Any]:
    uefi = sysroot.isdir("/sys/firmware/efi")
    vendor = (sysroot.read_text("/sys/class/dmi/id/bios_vendor") or "").strip() or None
    version = (sysroot.read_text("/sys/class/dmi/id/bios_version") or "").strip() or None
    uboot_version = sysroot.read_dt_string(DT_BASE + "/chosen/u-boot,version")
    if uboot_version or (vendor and "u-boot" in vendor.lower()):
        kind = "u-boot"
        version = uboot_version or version
    elif vendor and ("edk" in vendor.lower() or "tianocore" in vendor.lower()):
        kind = "edk2"
    elif uefi:
        kind = "uefi"
    else:
        kind = "unknown"
    return {"kind": kind, "uefi": uefi, "vendor": vendor, "version": version}


def probe_boot_loader(sysroot: SysRoot, uefi: bool) -> dict[str, Any]:
    loader_info = sysroot.read_bytes(LOADER_INFO)
    if loader_info:
        # efivars: 4 attribute bytes, then UTF-16LE text such as "systemd-boot 256".
        name = loader_info[4:].decode("utf-16-le", "replace").rstrip("\0")
        config = _first_existing(sysroot, SYSTEMD_BOOT_CONFIGS)
        return {"name": "systemd-boot" if "systemd-boot" in name else name, "config": config}
    grub = _first_existing(sysroot, GRUB_CONFIGS)
    extlinux = _first_existing(sysroot, EXTLINUX_CONFIGS)
    systemd_boot = _first_existing(sysroot, SYSTEMD_BOOT_CONFIGS)
    if uefi and grub:
        return {"name": "grub", "config": grub}
    if uefi and systemd_boot:
        return {"name": "systemd-boot", "config": systemd_boot}
    if extlinux:
        return {"name": "extlinux", "config": extlinux}
    script = _first_existing(sysroot, UBOOT_SCRIPTS)
    if script:
        return {"name": "u-boot-script", "config": script}
    if grub:
        return {"name": "grub", "config": grub}
    return {"name": "unknown", "config": None}


def boot_chain_of(sysroot: SysRoot, firmware: dict[str, Any], loader: dict[str, Any]) -> str:
    """The chain name the rollout stage dispatches on: the descriptor whose detection rule matches."""
    author = config_author(sysroot.read_text(loader["config"])) if loader["config"] else None
    return detect(firmware["uefi"], loader["name"], author)


def probe_grub_generator(sysroot: SysRoot, loader: dict[str, Any]) -> dict[str, Any] | None:
    """The distribution's grub.cfg generator: the command that regenerates the config GRUB reads (Debian's
    update-grub, else grub-mkconfig -o <config>), and whether it reads /etc/default/grub.d/*.cfg (Debian's
    does; upstream GRUB's, which Arch ships, reads /etc/default/grub only)."""
    program = _which(sysroot, "grub-mkconfig") or _which(sysroot, "grub2-mkconfig")
    if program is None or loader["name"] != "grub" or not loader["config"]:
        return None
    update_grub = _which(sysroot, "update-grub")
    default_config = update_grub is not None and loader["config"] == "/boot/grub/grub.cfg"
    return {"command": program,
            "regenerate": [update_grub] if default_config else [program, "-o", loader["config"]],
            "reads_defaults_dropins": "/default/grub.d/" in (sysroot.read_text(program) or "")}


# What GRUB's save_env can write into (it rewrites grubenv's blocks in place, unless the file system checksums,
# compresses or moves them): grub-editenv(1) and GRUB's manual name btrfs, ZFS, LVM, RAID and encryption as the
# cases where it cannot. A one-shot entry that is never cleared would boot the trial kernel at every reset.
GRUBENV_WRITABLE = ("ext2", "ext3", "ext4", "vfat")


def grubenv_filesystem(sysroot: SysRoot, loader: dict[str, Any]) -> dict[str, Any] | None:
    """The mount holding GRUB's grubenv (next to its grub.cfg): device, file system type, and whether GRUB
    itself can write it at boot (what a one-shot entry needs)."""
    if loader["name"] != "grub" or not loader["config"]:
        return None
    folder = loader["config"].rsplit("/", 1)[0]
    best: tuple[str, str, str] | None = None
    for line in (sysroot.read_text("/proc/self/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mountpoint, fstype = fields[0], fields[1].replace("\\040", " "), fields[2]
        inside = folder == mountpoint or folder.startswith(mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(mountpoint) >= len(best[1])):
            best = (device, mountpoint, fstype)
    if best is None:
        return None
    device, mountpoint, fstype = best
    layered = device.startswith(("/dev/mapper/", "/dev/md", "/dev/dm-"))
    return {"device": device, "mountpoint": mountpoint, "type": fstype,
            "grub_can_write": fstype in GRUBENV_WRITABLE and not layered}


def device_tree_source(sysroot: SysRoot, firmware: dict[str, Any], loader: dict[str, Any]) -> str:
    """Where the live device tree came from, as far as the loader config tells."""
    if not sysroot.isdir(DT_BASE):
        return "none"
    config = sysroot.read_text(loader["config"]) if loader["config"] else None
    if config:
        if loader["name"] == "grub" and re.search(r"^\s*devicetree\s", config, re.MULTILINE):
            return "grub-devicetree"
        if loader["name"] == "extlinux" and re.search(r"^\s*(fdt|devicetree|fdtdir)\s", config,
                                                      re.MULTILINE | re.IGNORECASE):
            return "extlinux-fdt"
        if loader["name"] == "systemd-boot" and re.search(r"^\s*devicetree\s", config, re.MULTILINE):
            return "systemd-boot-devicetree"
    if firmware["kind"] == "u-boot":
        return "u-boot"
    return "firmware"


def probe_distribution(sysroot: SysRoot) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for line in (sysroot.read_text("/etc/os-release") or sysroot.read_text("/usr/lib/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    ident = fields.get("ID", "unknown")
    family = DISTRIBUTION_FAMILIES.get(ident)
    for like in fields.get("ID_LIKE", "").split():
        family = family or DISTRIBUTION_FAMILIES.get(like)
    return {"id": ident, "name": fields.get("PRETTY_NAME", ident), "version_id": fields.get("VERSION_ID"),
            "family": family or "unknown"}


def probe_initramfs_tool(sysroot: SysRoot, family: str) -> str:
    """The tool that makes this board's initramfs images, or `none`: then kernels boot without one (their root
    drivers built in), which the rollout's trial boot tests like anything else."""
    # The distribution's own tool first: an Arch system may carry dracut too, but boots mkinitcpio images.
    preferred = {"arch": "mkinitcpio", "debian": "initramfs-tools", "redhat": "dracut", "suse": "dracut"}.get(family)
    available = [tool for program, tool in INITRAMFS_TOOLS if _which(sysroot, program)]
    if preferred in available:
        return preferred
    return available[0] if available else "none"


def memory_mib(sysroot: SysRoot) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+) kB", sysroot.read_text("/proc/meminfo") or "", re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def cpu_governors(sysroot: SysRoot) -> dict[str, str]:
    """cpufreq governor per CPU: benchmarks on the RK3588 swing with it, so reports record it."""
    governors = {}
    for name in sysroot.listdir("/sys/devices/system/cpu"):
        if re.fullmatch(r"cpu\d+", name):
            governor = sysroot.read_text("/sys/devices/system/cpu/%s/cpufreq/scaling_governor" % name)
            if governor:
                governors[name] = governor.strip()
    return dict(sorted(governors.items(), key=lambda item: int(item[0][3:])))


def npu_devfreq(sysroot: SysRoot) -> dict[str, Any] | None:
    """The NPU's devfreq node (fdab0000.npu on the RK3588), when the kernel scales its clock."""
    for name in sysroot.listdir("/sys/class/devfreq"):
        if "npu" in name:
            base = "/sys/class/devfreq/" + name
            current = (sysroot.read_text(base + "/cur_freq") or "").strip()
            return {"name": name, "cur_freq_hz": int(current) if current.isdigit() else None,
                    "governor": (sysroot.read_text(base + "/governor") or "").strip() or None}
    return None


def probe(root: str = "/") -> dict[str, Any]:
    sysroot = SysRoot(root)
    firmware = probe_firmware(sysroot)
    loader = probe_boot_loader(sysroot, firmware["uefi"])
    distribution = probe_distribution(sysroot)
    chain = boot_chain_of(sysroot, firmware, loader)
    watchdogs = [name for name in sysroot.listdir("/dev") if re.fullmatch(r"watchdog\d*", name)]
    return {
        "kernel_release": kernel_release(sysroot),
        "architecture": os.uname().machine if sysroot.root == "/" else None,
        "model": sysroot.read_dt_string(DT_BASE + "/model"),
        "firmware": firmware,
        "boot_loader": loader,
        "boot_chain": chain,
        # How this chain boots a trial kernel and commits a default (module_utils/boot_chains.py), or null.
        "boot_chain_descriptor": descriptor(chain) if chain in BOOT_CHAINS else None,
        "boot_chains_supported": list(BOOT_CHAINS),
        # A distribution-generated chain without our generator script: `rosenblatt adopt` comes first.
        "boot_adoption_needed": chain in BOOT_CHAINS and "generator_script" in BOOT_CHAINS[chain]
        and not sysroot.exists(BOOT_CHAINS[chain]["generator_script"]),
        "grub_generator": probe_grub_generator(sysroot, loader),
        "grubenv_filesystem": grubenv_filesystem(sysroot, loader),
        "device_tree_source": device_tree_source(sysroot, firmware, loader),
        "distribution": distribution,
        "initramfs_tool": probe_initramfs_tool(sysroot, distribution["family"]),
        "memory_mib": memory_mib(sysroot),
        "watchdogs": ["/dev/" + name for name in watchdogs],
        "kexec": _which(sysroot, "kexec"),
        "cpu_governors": cpu_governors(sysroot),
        "npu_devfreq": npu_devfreq(sysroot),
        # systemd is the service manager when it made this folder at boot (what systemd-run needs).
        "systemd": sysroot.isdir("/run/systemd/system"),
    }
