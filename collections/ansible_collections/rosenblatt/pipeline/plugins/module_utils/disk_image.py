# Copyright: rosenblatt developers
# MIT License
"""Assemble a GPT disk image (boot, EFI system and root partitions) from a root file system tree.

The layout is documented in docs/board-image.md. No loop device and no mount: each file system is
created directly inside the image file at its partition's offset (`mkfs.fat --offset`,
`mke2fs -E offset= -d`), so this runs the same on a CI machine without loop devices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of

MIB = 1024 * 1024
SECTOR = 512
# GPT type codes (sgdisk): EFI system, Linux file system, Linux ARM64 root (/).
TYPE_ESP, TYPE_LINUX, TYPE_ROOT_ARM64 = "EF00", "8300", "8305"
# ext4 features old boot loaders cannot read: GRUB 2.06 refuses metadata_csum_seed; orphan_file is
# new in e2fsprogs 1.47. The boot partition is read by U-Boot and GRUB, so it leaves both out.
BOOT_FS_FEATURES = "^metadata_csum_seed,^orphan_file"
TOOLS = ("sgdisk", "mkfs.fat", "mcopy", "mke2fs")


class ImageError(Exception):
    """An expected failure, reported to the user as is."""


@dataclass(frozen=True)
class Partition:
    number: int
    name: str
    type_code: str
    start_mib: int
    size_mib: int
    partuuid: str
    mountpoint: str

    @property
    def offset(self) -> int:
        return self.start_mib * MIB

    @property
    def size(self) -> int:
        return self.size_mib * MIB

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "type": self.type_code, "start_bytes": self.offset,
                "size_bytes": self.size, "partuuid": self.partuuid, "mountpoint": self.mountpoint}


def plan_layout(first_mib: int, esp_mib: int, boot_mib: int, root_mib: int,
                partuuids: dict[str, str]) -> tuple[list[Partition], int]:
    """Partitions in order and the image size in bytes (1 MiB left at the end for the backup GPT)."""
    for name, value, least in (("first_mib", first_mib, 1), ("esp_mib", esp_mib, 33), ("boot_mib", boot_mib, 64),
                               ("root_mib", root_mib, 256)):
        if not isinstance(value, int) or value < least:
            raise ImageError("%s is %r: expected a whole number of MiB, at least %d" % (name, value, least))
    partitions = []
    start = first_mib
    for number, (name, type_code, size, mountpoint) in enumerate(
            # boot first: U-Boot's distro boot scans partitions in order, the EFI system partition
            # counts as bootable too, and one with an EFI binary would be booted before extlinux.conf.
            (("boot", TYPE_LINUX, boot_mib, "/boot"), ("EFI", TYPE_ESP, esp_mib, "/boot/efi"),
             ("root", TYPE_ROOT_ARM64, root_mib, "/")), start=1):
        partitions.append(Partition(number, name, type_code, start, size, partuuids[name], mountpoint))
        start += size
    return partitions, (start + 1) * MIB


def tree_size(path: str) -> int:
    """Bytes the files under path occupy (allocated blocks), without following symlinks."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            status = os.lstat(os.path.join(directory, name))
            total += status.st_blocks * 512
    return total


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            env=dict(os.environ, **(env or {})))
    if result.returncode != 0:
        raise ImageError("%s failed (exit %d): %s" % (" ".join(argv), result.returncode,
                                                       (result.stderr or result.stdout).strip()[-2000:]))


def split_tree(rootfs: str, work: str) -> dict[str, str]:
    """Move /boot/efi and /boot out of the tree, leaving empty mount points: one tree per file system."""
    esp, boot = os.path.join(work, "esp"), os.path.join(work, "boot")
    for path in (esp, boot):
        if os.path.exists(path):
            shutil.rmtree(path)
    os.rename(os.path.join(rootfs, "boot", "efi"), esp)
    os.mkdir(os.path.join(rootfs, "boot", "efi"), 0o755)
    os.rename(os.path.join(rootfs, "boot"), boot)
    os.mkdir(os.path.join(rootfs, "boot"), 0o755)
    return {"EFI": esp, "boot": boot, "root": rootfs}


def assemble(rootfs: str, dest: str, partitions: list[Partition], image_size: int, *, disk_guid: str,
             fs_ids: dict[str, str]) -> dict[str, Any]:
    """Write the image to dest (through dest.partial, renamed when complete); the rootfs tree is consumed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ImageError("missing tools on the controller: %s (Debian packages gdisk, dosfstools, mtools, "
                         "e2fsprogs: tools/apt/board.txt)" % ", ".join(missing))
    for path in ("boot", "boot/efi"):
        if not os.path.isdir(os.path.join(rootfs, path)):
            raise ImageError("%s has no /%s folder: not a root file system for this layout" % (rootfs, path))
    work = os.path.dirname(os.path.abspath(dest))
    trees = split_tree(rootfs, work)
    for partition in partitions:
        needed = tree_size(trees[partition.name])
        # File system metadata (inode tables, journal) takes room too: ask for a 20 % margin.
        if needed * 1.2 > partition.size:
            raise ImageError("the %s partition is %d MiB but its files need %d MiB (+20 %% for metadata): raise "
                             "board_image_%s_mib" % (partition.name, partition.size_mib, -(-needed // MIB),
                                                     {"EFI": "esp"}.get(partition.name, partition.name)))
    partial = dest + ".partial"
    if os.path.exists(partial):
        os.unlink(partial)
    with open(partial, "wb") as image:
        image.truncate(image_size)
    sgdisk = ["sgdisk", "--clear", "--disk-guid=%s" % disk_guid]
    for partition in partitions:
        sgdisk += ["--new=%d:%dM:+%dM" % (partition.number, partition.start_mib, partition.size_mib),
                   "--typecode=%d:%s" % (partition.number, partition.type_code),
                   "--change-name=%d:%s" % (partition.number, partition.name),
                   "--partition-guid=%d:%s" % (partition.number, partition.partuuid)]
    boot, esp, root = partitions
    # U-Boot's distro boot scans partitions flagged "legacy BIOS bootable" for extlinux.conf.
    sgdisk += ["--attributes=%d:set:2" % boot.number, partial]
    _run(sgdisk)
    _run(["mkfs.fat", "-F", "32", "-s", "1", "-n", "EFI", "-i", fs_ids["EFI"], "--offset=%d" % (esp.offset // SECTOR),
          partial, str(esp.size // 1024)])
    entries = sorted(os.listdir(trees["EFI"]))
    if entries:
        _run(["mcopy", "-s", "-p", "-m", "-i", "%s@@%d" % (partial, esp.offset),
              *[os.path.join(trees["EFI"], name) for name in entries], "::/"], env={"MTOOLS_SKIP_CHECK": "1"})
    for partition, features in ((boot, BOOT_FS_FEATURES), (root, None)):
        argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", partition.name, "-U", fs_ids[partition.name],
                "-E", "offset=%d,root_owner=0:0" % partition.offset, "-d", trees[partition.name]]
        if features:
            argv += ["-O", features]
        _run([*argv, partial, "%dk" % (partition.size // 1024)])
    digest = sha256_of(partial)
    os.replace(partial, dest)
    return {"path": dest, "size_bytes": image_size, "sha256": digest, "disk_guid": disk_guid,
            "partitions": [dict(p.as_dict(), fs_id=fs_ids[p.name]) for p in partitions]}
