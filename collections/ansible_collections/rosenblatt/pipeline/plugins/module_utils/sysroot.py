# Copyright: rosenblatt developers
# MIT License
"""Read a system's /proc, /sys, /dev and /etc below a root prefix.

Every probe reads through a SysRoot so that tests can point it at a fixture tree that
reproduces the layout a real kernel creates, and the module can inspect a mounted image.
"""

from __future__ import annotations

import gzip
import os
import re
import stat

KCONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
KCONFIG_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class SysRoot:
    """Paths are absolute as on the target ("/proc/modules"); they are resolved below root."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root)

    def path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.path(path))

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self.path(path))

    def read_text(self, path: str) -> str | None:
        """File text, or None when absent or unreadable (permissions, EIO on sysfs)."""
        try:
            with open(self.path(path), "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return None

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with open(self.path(path), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def read_dt_string(self, path: str) -> str | None:
        """A device-tree string property: NUL-terminated, possibly a NUL-separated list."""
        raw = self.read_bytes(path)
        if raw is None:
            return None
        return raw.rstrip(b"\0").decode("utf-8", "replace")

    def read_dt_strings(self, path: str) -> list[str]:
        value = self.read_dt_string(path)
        return [] if value is None else [item for item in value.split("\0") if item]

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(path)))
        except OSError:
            return []

    def readlink_name(self, path: str) -> str | None:
        """Last component of a symlink's target (sysfs 'driver' and 'device' links)."""
        try:
            return os.path.basename(os.readlink(self.path(path)))
        except OSError:
            return None

    def is_char_device(self, path: str) -> bool:
        try:
            return stat.S_ISCHR(os.stat(self.path(path)).st_mode)
        except OSError:
            return False

    def glob_first(self, directory: str, pattern: str) -> str | None:
        regex = re.compile(pattern)
        for name in self.listdir(directory):
            if regex.fullmatch(name):
                return directory.rstrip("/") + "/" + name
        return None


def parse_kconfig(text: str) -> dict[str, str]:
    """CONFIG_X=value lines to a dict; '# CONFIG_X is not set' becomes 'n'."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = KCONFIG_LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2).strip('"')
            continue
        match = KCONFIG_UNSET.match(line)
        if match:
            values[match.group(1)] = "n"
    return values


def read_kernel_config(sysroot: SysRoot, release: str | None) -> tuple[dict[str, str] | None, str | None]:
    """The running kernel's config and where it came from, or (None, None) when unknown."""
    raw = sysroot.read_bytes("/proc/config.gz")
    if raw is not None:
        try:
            return parse_kconfig(gzip.decompress(raw).decode("utf-8", "replace")), "/proc/config.gz"
        except (OSError, EOFError):
            pass
    if release:
        for candidate in ("/boot/config-" + release, "/lib/modules/" + release + "/build/.config",
                          "/usr/lib/modules/" + release + "/build/.config"):
            text = sysroot.read_text(candidate)
            if text is not None:
                return parse_kconfig(text), candidate
    return None, None


def kernel_release(sysroot: SysRoot) -> str | None:
    text = sysroot.read_text("/proc/sys/kernel/osrelease")
    return text.strip() if text else None
