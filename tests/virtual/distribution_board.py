"""A virtual board installed the way Debian installs itself, not by our board_image: what boltzmann is to us,
a board whose distribution owns its boot loader.

As debian-installer does it: the base system and the kernel package (linux-image-arm64, whose postinst
makes /boot/vmlinuz-*, /boot/initrd.img-* with update-initramfs), then, on the installed system itself,
`grub-install` of Debian's grub-efi-arm64 (with the removable-media copy, debconf's
force_efi_extra_removable, since the virtual board's EFI variables are new on every fresh start) and
`update-grub`, which writes /boot/grub/grub.cfg through /etc/grub.d. That first boot runs with QEMU's direct
kernel boot under edk2 and powers off when done. /boot is a folder of the root file system (Debian's
"all files in one partition"), so GRUB paths are /boot/..., unlike our image's boot partition.

The one setting that is not Debian's default: initramfs-tools lists the virtual machine's drivers
(MODULES=list) instead of MODULES=most, which takes far too long under emulation, in the initramfs that
Debian's package makes and in the ones the rollout makes with the board's own configuration.

The image is cached under $ROSENBLATT_CACHE/images/debian-installed-<key>/ (disk.img, manifest.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.disk_image import BOOT_FS_FEATURES, MIB, SECTOR
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_source import apt_options
from tests.conftest import CACHE

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["systemd-sysv", "systemd-resolved", "udev", "dbus", "openssh-server", "python3", "sudo", "kmod", "zstd",
            "initramfs-tools", "linux-image-arm64", "grub-efi-arm64", "efibootmgr", "e2fsprogs", "dosfstools",
            "iproute2", "ca-certificates"]
USER = "rosenblatt"
KEY = CACHE / "virtual-board" / "id_ed25519"
ESP_MIB, ROOT_MIB = 128, 3072
# Bumped when the steps below change.
FORMAT = 2
INSTALL_TIMEOUT = 1800

SETUP = r"""set -eu
useradd --create-home --shell /bin/bash --groups sudo {user}
echo '{user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{user}
install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh
install -m 0600 -o {user} -g {user} /tmp/authorized_keys /home/{user}/.ssh/authorized_keys
echo {hostname} > /etc/hostname
printf 'UUID={root} / ext4 errors=remount-ro 0 1\nUUID={esp} /boot/efi vfat umask=0077 0 1\n' > /etc/fstab
mkdir -p /boot/efi
printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' > /etc/systemd/network/50-wired.network
systemctl enable systemd-networkd.service systemd-resolved.service ssh.service install-boot-loader.service
"""

INSTALL_BOOT_LOADER = r"""#!/bin/sh
# debian-installer's last step, on the installed system: GRUB onto the EFI system partition, grub.cfg by update-grub.
set -eu
grub-install --target=arm64-efi --efi-directory=/boot/efi --bootloader-id=debian --force-extra-removable
update-grub
systemctl disable install-boot-loader.service
rm /etc/systemd/system/install-boot-loader.service /usr/local/sbin/install-boot-loader
echo "rosenblatt: boot loader installed" > /dev/console
systemctl poweroff
"""

UNIT = """[Unit]
Description=Install the boot loader (debian-installer's grub-installer step), then power off
After=local-fs.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/install-boot-loader
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
"""


def _key() -> str:
    text = json.dumps({"format": FORMAT, "suite": SUITE, "packages": PACKAGES, "setup": SETUP,
                       "install": INSTALL_BOOT_LOADER, "unit": UNIT, "esp": ESP_MIB, "root": ROOT_MIB})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(argv: list[str], **kwargs: object) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (argv[0], result.returncode,
                                                         (result.stderr or result.stdout)[-3000:]))


def _overlay(work: Path, ids: dict[str, str]) -> Path:
    overlay = work / "overlay"
    files = {
        "tmp/authorized_keys": Path(str(KEY) + ".pub").read_text(),
        "tmp/setup.sh": SETUP.format(user=USER, hostname="virtual-debian", **ids),
        "usr/local/sbin/install-boot-loader": INSTALL_BOOT_LOADER,
        "etc/systemd/system/install-boot-loader.service": UNIT,
        "etc/initramfs-tools/conf.d/virtual-board.conf": "MODULES=list\n",
        # Not /etc/initramfs-tools/modules: that is the package's conffile.
        "usr/share/initramfs-tools/modules.d/virtual-board": "virtio_pci\nvirtio_blk\next4\n",
        # As the installer sets it up on a serial console.
        "etc/default/grub.d/console.cfg": 'GRUB_CMDLINE_LINUX="console=ttyAMA0,115200"\nGRUB_TERMINAL=console\n',
    }
    for relative, content in files.items():
        path = overlay / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if "sbin" in relative or relative.endswith(".sh") else 0o644)
    (overlay / "tmp").chmod(0o1777)
    return overlay


def _assemble(rootfs: Path, image: Path, ids: dict[str, str]) -> None:
    """GPT with the EFI system partition and one root file system holding /boot."""
    esp_start, root_start = 1, 1 + ESP_MIB
    with open(image, "wb") as stream:
        stream.truncate((root_start + ROOT_MIB + 1) * MIB)
    _run(["sgdisk", "--clear", f"--new=1:{esp_start}M:+{ESP_MIB}M", "--typecode=1:EF00", "--change-name=1:EFI",
          f"--new=2:{root_start}M:+{ROOT_MIB}M", "--typecode=2:8305", "--change-name=2:root", str(image)])
    # One sector per cluster: FAT32 needs at least 65525 clusters, or edk2 takes it for FAT16 and finds nothing.
    _run(["mkfs.fat", "-F", "32", "-s", "1", "-n", "EFI", "-i", ids["esp"].replace("-", ""),
          f"--offset={esp_start * MIB // SECTOR}", str(image), str(ESP_MIB * 1024)])
    # /boot is on this file system and GRUB reads it: leave out the ext4 features GRUB 2.06 refuses.
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-U", ids["root"], "-O", BOOT_FS_FEATURES,
          "-E", f"offset={root_start * MIB},root_owner=0:0", "-d", str(rootfs), str(image), f"{ROOT_MIB * 1024}k"])


def _first_boot(work: Path, image: Path, rootfs_boot: Path, ids: dict[str, str]) -> float:
    """Boot the installed kernel directly (edk2 loads it) once: the unit installs GRUB and powers off."""
    kernel = sorted(rootfs_boot.glob("vmlinuz-*"))[-1]
    initrd = rootfs_boot / kernel.name.replace("vmlinuz", "initrd.img")
    shutil.copy(kernel, work / "vmlinuz")
    shutil.copy(initrd, work / "initrd.img")
    shutil.copy("/usr/share/AAVMF/AAVMF_VARS.fd", work / "efivars.fd")
    console = work / "console.log"
    started = time.monotonic()
    argv = ["qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a76", "-accel", "tcg,thread=multi", "-smp", "2",
            "-m", "2048", "-display", "none", "-monitor", "none", "-serial", f"file:{console}", "-no-reboot",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
            "-drive", f"if=pflash,format=raw,unit=1,file={work / 'efivars.fd'}",
            "-drive", f"if=none,id=disk,format=raw,file={image}", "-device", "virtio-blk-pci,drive=disk",
            "-device", "virtio-rng-pci", "-nic", "none",
            "-kernel", str(work / "vmlinuz"), "-initrd", str(work / "initrd.img"),
            "-append", f"root=UUID={ids['root']} ro console=ttyAMA0,115200"]
    try:
        subprocess.run(argv, check=True, timeout=INSTALL_TIMEOUT, capture_output=True)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError("the installing boot did not power off within %d s; console:\n%s"
                           % (INSTALL_TIMEOUT, console.read_text(errors="replace")[-3000:])) from exc
    text = console.read_text(errors="replace")
    if "rosenblatt: boot loader installed" not in text:
        raise RuntimeError("the installing boot ended without installing GRUB; console:\n" + text[-3000:])
    return time.monotonic() - started


def image() -> Path:
    """The image (built once per key): Debian bookworm arm64 as its installer leaves it."""
    folder = CACHE / "images" / f"debian-installed-{_key()}"
    if not (folder / "manifest.json").exists():
        _build(folder)
    # The inventory's path for it (tests/inventory/virtual: virtual-debian).
    link = CACHE / "images" / "debian-installed"
    if not link.is_symlink() or os.readlink(link) != folder.name:
        partial = Path(str(link) + ".partial")
        partial.unlink(missing_ok=True)
        partial.symlink_to(folder.name)
        os.replace(partial, link)
    return link / "disk.img"


def _build(folder: Path) -> None:
    work = Path(str(folder) + ".partial")
    if work.exists():
        subprocess.run(["umount", "-R", "-l", str(work / "rootfs")], capture_output=True, check=False)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    name = uuid.uuid5(uuid.NAMESPACE_URL, "rosenblatt:debian-installed:" + _key())
    ids = {"root": str(name), "esp": name.hex[:4].upper() + "-" + name.hex[4:8].upper()}
    started = time.monotonic()
    overlay = _overlay(work, ids)
    rootfs = work / "rootfs"
    _run(["nice", "mmdebstrap", "--mode=root", "--arch=arm64", "--variant=apt",
          "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata", "--include=" + ",".join(PACKAGES),
          "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
          # The initramfs settings must be in place before the kernel package's postinst runs.
          f"--essential-hook=sync-in {overlay}/etc /etc",
          f"--essential-hook=sync-in {overlay}/usr /usr",
          f"--customize-hook=sync-in {overlay} /",
          '--customize-hook=chroot "$1" /bin/sh /tmp/setup.sh',
          '--customize-hook=rm -f "$1"/tmp/setup.sh "$1"/tmp/authorized_keys',
          SUITE, str(rootfs), MIRROR], timeout=INSTALL_TIMEOUT)
    debootstrap_seconds = time.monotonic() - started
    boot_copy = work / "boot"
    shutil.copytree(rootfs / "boot", boot_copy)
    _assemble(rootfs, work / "disk.img", ids)
    shutil.rmtree(rootfs)
    install_seconds = _first_boot(work, work / "disk.img", boot_copy, ids)
    (work / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "key": _key(), "suite": SUITE, "packages": PACKAGES, "root_uuid": ids["root"],
         "kernels": sorted(path.name for path in boot_copy.glob("vmlinuz-*")),
         "seconds": {"mmdebstrap": round(debootstrap_seconds), "install_boot": round(install_seconds)}}, indent=2))
    for leftover in ("boot", "vmlinuz", "initrd.img", "efivars.fd"):
        path = work / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.rename(work, folder)



def second_kernel_package(installed_release: str) -> Path:
    """Another kernel package of the installed suite, as a distribution kernel update brings one: the cloud
    flavour of the installed kernel (linux-image-<abi>-cloud-arm64), downloaded once (private apt config)."""
    name = "linux-image-" + installed_release.replace("-arm64", "-cloud-arm64")
    folder = CACHE / "debs" / f"{SUITE}-arm64"
    found = sorted(folder.glob(f"{name}_*.deb"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    options = apt_options(str(CACHE / "apt" / f"{SUITE}-arm64"), MIRROR, SUITE, "arm64")
    _run(["apt-get", *options, "-q", "update"])
    _run(["apt-get", *options, "-q", "download", name], cwd=folder)
    return sorted(folder.glob(f"{name}_*.deb"))[-1]
