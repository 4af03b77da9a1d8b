# Copyright: rosenblatt developers
# MIT License
"""Writing a disk image to a block device attached to the controller, without writing to the wrong one.

Guards, each checked before a byte is written: the device is a whole block device; neither it nor any
of its partitions is mounted, used as swap or held by another device (LVM, dm-crypt, RAID); it is not a
disk the controller's root file system lives on; its size, and its serial and model where the inventory
names them, are what the inventory says; the image fits. After writing, the written range is read back
(page cache dropped first) and its sha256 compared with the image's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
from typing import Any

MIB = 1024 * 1024
BLKFLSBUF = 0x1261  # ioctl: flush the device's buffer cache, so the read-back comes from the device


class GuardError(Exception):
    """The device must not be written; the message says why."""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read().strip()
    except OSError:
        return None


def _sys_block(name: str) -> str:
    return os.path.join("/sys/class/block", name)


def _partitions(name: str) -> list[str]:
    base = _sys_block(name)
    return sorted(entry for entry in os.listdir(base)
                  if entry.startswith(name) and os.path.exists(os.path.join(base, entry, "partition")))


def _devnum(name: str) -> str | None:
    return _read(os.path.join(_sys_block(name), "dev"))


def _whole_disk(name: str) -> str:
    """The disk a partition belongs to (the name itself for a whole disk)."""
    if os.path.exists(os.path.join(_sys_block(name), "partition")):
        return os.path.basename(os.path.dirname(os.path.realpath(_sys_block(name))))
    return name


def _disks_under(name: str) -> set[str]:
    """Whole disks a block device sits on, through device-mapper/RAID slaves."""
    slaves = os.path.join(_sys_block(name), "slaves")
    below = os.listdir(slaves) if os.path.isdir(slaves) else []
    if not below:
        return {_whole_disk(name)}
    disks: set[str] = set()
    for slave in below:
        disks |= _disks_under(slave)
    return disks


def _name_of_devnum(devnum: str) -> str | None:
    link = os.path.join("/sys/dev/block", devnum)
    return os.path.basename(os.path.realpath(link)) if os.path.exists(link) else None


def root_disks() -> set[str]:
    """Disks holding the controller's root file system."""
    status = os.stat("/")
    name = _name_of_devnum("%d:%d" % (os.major(status.st_dev), os.minor(status.st_dev)))
    if name is None:
        # Root on a virtual file system (overlay, tmpfs): take the devices mounted at / from mountinfo.
        disks: set[str] = set()
        for mount in _mountinfo():
            if mount["mountpoint"] == "/" and mount["source"].startswith("/dev/"):
                disks |= _disks_under(os.path.basename(os.path.realpath(mount["source"])))
        return disks
    return _disks_under(name)


def _mountinfo() -> list[dict[str, str]]:
    """Mounts of this mount namespace: device number, mount point, source."""
    mounts = []
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        before, _sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 2:
            mounts.append({"devnum": fields[2], "mountpoint": fields[4], "source": tail[1]})
    return mounts


def users(name: str) -> list[str]:
    """Who uses the disk or one of its partitions: mounts, swap, holders."""
    found = []
    members = [name, *_partitions(name)]
    devnums = {_devnum(member): member for member in members}
    for mount in _mountinfo():
        if mount["devnum"] in devnums:
            found.append("/dev/%s is mounted on %s" % (devnums[mount["devnum"]], mount["mountpoint"]))
    for line in (_read("/proc/swaps") or "").splitlines()[1:]:
        device = line.split()[0] if line.split() else ""
        if os.path.basename(os.path.realpath(device)) in members:
            found.append("%s is in use as swap" % device)
    for member in members:
        holders = os.path.join(_sys_block(member), "holders")
        for holder in sorted(os.listdir(holders)) if os.path.isdir(holders) else []:
            found.append("/dev/%s is held by /dev/%s (device mapper, RAID or LVM)" % (member, holder))
    return found


def describe(device: str) -> dict[str, Any]:
    """What the controller knows of a block device: path, name, size, serial, model, users."""
    real = os.path.realpath(device)
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise GuardError("%s does not exist (%s)" % (device, exc.strerror)) from exc
    if not stat.S_ISBLK(mode):
        raise GuardError("%s is not a block device" % device)
    name = os.path.basename(real)
    if os.path.exists(os.path.join(_sys_block(name), "partition")):
        raise GuardError("%s is a partition (of /dev/%s): give the whole disk" % (device, _whole_disk(name)))
    size = int(_read(os.path.join(_sys_block(name), "size")) or 0) * 512
    base = os.path.join(_sys_block(name), "device")
    serial = _read(os.path.join(base, "serial")) or _read(os.path.join(_sys_block(name), "serial"))
    if serial is None:
        serial = _read(os.path.join(base, "vpd_pg80"))
    return {"path": real, "name": name, "size_bytes": size, "serial": serial,
            "model": _read(os.path.join(base, "model")), "users": users(name),
            "read_only": _read(os.path.join(_sys_block(name), "ro")) == "1"}


def guard(device: str, size_bytes: int, image_size: int, serial: str | None = None,
          model: str | None = None) -> dict[str, Any]:
    """The device's description if every guard passes; else GuardError naming each failed guard."""
    facts = describe(device)
    problems = list(facts["users"])
    if facts["name"] in root_disks():
        problems.append("/dev/%s holds the controller's root file system" % facts["name"])
    if facts["size_bytes"] != size_bytes:
        problems.append("size is %d bytes, the inventory says %d" % (facts["size_bytes"], size_bytes))
    if serial and facts["serial"] != serial:
        problems.append("serial is %r, the inventory says %r" % (facts["serial"], serial))
    if model and facts["model"] != model:
        problems.append("model is %r, the inventory says %r" % (facts["model"], model))
    if image_size > facts["size_bytes"]:
        problems.append("the image (%d bytes) is larger than the device (%d bytes)" % (image_size, facts["size_bytes"]))
    if facts["read_only"]:
        problems.append("the device is read-only")
    if problems:
        raise GuardError("refusing to write %s: %s" % (device, "; ".join(problems)))
    return facts


def _drop_cache(fd: int) -> None:
    with contextlib.suppress(OSError):  # not every block driver implements BLKFLSBUF
        fcntl.ioctl(fd, BLKFLSBUF, 0)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def device_sha256(device: str, length: int) -> str:
    """sha256 of the first length bytes of the device, read from the device, not the page cache."""
    digest = hashlib.sha256()
    fd = os.open(device, os.O_RDONLY)
    try:
        _drop_cache(fd)
        remaining = length
        while remaining > 0:
            chunk = os.read(fd, min(4 * MIB, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def write_image(image: str, device: str) -> None:
    """Copy the image to the start of the device and flush it to the medium. O_EXCL makes the kernel
    refuse a device that is mounted or claimed by anything, even if it was mounted after the guards ran."""
    fd = os.open(device, os.O_WRONLY | os.O_EXCL)
    try:
        with open(image, "rb") as source:
            for chunk in iter(lambda: source.read(4 * MIB), b""):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        os.fsync(fd)
        _drop_cache(fd)
    finally:
        os.close(fd)
