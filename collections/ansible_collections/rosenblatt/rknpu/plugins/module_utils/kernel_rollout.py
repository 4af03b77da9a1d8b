# Copyright: rosenblatt developers
# MIT License
"""What the kernel rollout needs to know and decide, apart from Ansible: the kernel image's architecture,
the board's boot state (installed kernels, default, known-good, bad releases) and the plan of a rollout.

Kernels live in versioned paths, `/boot/<release>/{Image,initrd.img,config,dtbs/}` and
`/lib/modules/<release>/`, and the loader configs are rendered by the boot_config role from the boot
state file (`<state dir>/boot.json`). A board made by our image has no boot state yet: it is adopted
from the loader config that the image rendered (boot_config's marker says it is ours). A board whose
distribution generates grub.cfg is adopted by the boot_adoption role, which writes boot.json first.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
from typing import Any

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.boot_chains import BOOT_CHAINS, config_author

# Completes an installed kernel folder: the sha256 of the artifact manifest it came from.
INSTALLED_MARKER = ".rosenblatt-artifact"
# boot.json's format: 2 names the boot chains served (`chains`); 1 named loader configs (`loaders`).
STATE_FORMAT = 2
FORMAT_1_LOADERS = {"grub": "uefi-grub", "extlinux": "uboot-extlinux"}
# Kernel parameters the loader or the trial adds; not part of the board's own command line.
TRANSIENT_PARAMETERS = ("BOOT_IMAGE=", "initrd=", "rosenblatt.trial_deadline=")
ARM64_MAGIC = b"ARM\x64"  # offset 56 of an arm64 Image (Documentation/arch/arm64/booting.rst)
# Board paths every rollout module takes (documented in doc_fragments/kernel_paths.py).
PATHS_SPEC: dict[str, dict[str, str]] = {"boot_dir": {"type": "path", "default": "/boot"},
                                         "modules_dir": {"type": "path", "default": "/lib/modules"}}


class RolloutError(Exception):
    """A rollout that must not go ahead, with the reason."""


def image_architecture(path: str) -> str:
    """arm64, x86, arm (32-bit zImage) or unknown, from the kernel image's header. A gzip-compressed Image
    (Debian's older vmlinuz) is looked into; an EFI zboot image is told by its PE machine type."""
    with open(path, "rb") as stream:
        head = stream.read(0x400)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as stream:
            head = stream.read(0x400)
    if head[56:60] == ARM64_MAGIC:
        return "arm64"
    if head[0x202:0x206] == b"HdrS":
        return "x86"
    if head[0x24:0x28] == b"\x18\x28\x6f\x01":
        return "arm"
    if head[:2] == b"MZ" and head[4:8] == b"zimg" and len(head) >= 0x40:
        pe_offset = struct.unpack_from("<I", head, 0x3C)[0]
        if pe_offset + 6 <= len(head) and head[pe_offset:pe_offset + 4] == b"PE\0\0":
            machine = struct.unpack_from("<H", head, pe_offset + 4)[0]
            return {0xAA64: "arm64", 0x8664: "x86"}.get(machine, "unknown")
    return "unknown"


def artifact_sizes(path: str, manifest: dict[str, Any]) -> dict[str, int]:
    """Bytes the artifact will take: on /boot (Image, config, dtbs) and below /lib/modules."""
    sizes = {"boot": 0, "modules": 0}
    for relative in manifest["files"]:
        where = "modules" if relative.startswith("modules/") else "boot"
        sizes[where] += os.path.getsize(os.path.join(path, relative))
    return sizes


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:
        return None


def installed_artifact(folder: str) -> str | None:
    """The manifest sha256 a complete installed folder (/boot/<release>, /lib/modules/<release>) came from."""
    text = _read(os.path.join(folder, INSTALLED_MARKER))
    return text.strip() if text is not None else None


def board_cmdline(proc_cmdline: str) -> str:
    """The running kernel's command line without what the loader or a trial boot added."""
    return " ".join(word for word in proc_cmdline.split() if not word.startswith(TRANSIENT_PARAMETERS))


def installed_releases(boot_dir: str) -> list[str]:
    """Releases with a complete versioned folder in /boot: Image, and initrd.img or the marker of an install
    (a board without an initramfs tool has none)."""
    try:
        names = sorted(os.listdir(boot_dir))
    except OSError:
        return []
    return [name for name in names if not name.endswith(".partial")
            and os.path.isfile(os.path.join(boot_dir, name, "Image"))
            and (os.path.isfile(os.path.join(boot_dir, name, "initrd.img"))
                 or os.path.isfile(os.path.join(boot_dir, name, INSTALLED_MARKER)))]


def adopt(boot_dir: str, running: str, proc_cmdline: str, chain: str | None = None) -> dict[str, Any]:
    """A first boot state. On a chain whose distribution generates the loader config: no kernel of ours yet,
    the running distribution kernel the default (its entry stays the distribution's). Else from the loader
    configs our image rendered; configs nobody we know wrote are refused: replacing them would surprise the
    board (docs/rollout.md, adopting a board)."""
    cmdline = board_cmdline(proc_cmdline)
    if chain is not None and BOOT_CHAINS.get(chain, {}).get("config_writer") == "distribution":
        return {"format": STATE_FORMAT, "chains": [chain], "cmdline": cmdline, "devicetree": "", "boot_fs_uuid": "",
                "entries": [], "default": running, "distribution": {"release": running}, "bad": {}}
    chains, configs = [], {}
    for name, descriptor in BOOT_CHAINS.items():
        if descriptor["config_writer"] != "rosenblatt":
            continue
        path = os.path.join(boot_dir, descriptor["config"])
        text = _read(path)
        if text is None:
            continue
        author = config_author(text)
        if author == "distribution":
            raise RolloutError("%s is generated by the distribution's grub-mkconfig, but the board facts did not "
                               "detect uefi-grub-distribution (is this the board's own GRUB?); see docs/rollout.md"
                               % path)
        if author != "rosenblatt":
            raise RolloutError("%s was written by neither rosenblatt nor grub-mkconfig: the rollout will not replace "
                               "a loader config it did not write, nor add to one no generator owns; see docs/rollout.md"
                               % path)
        chains.append(name)
        configs[descriptor["detect"]["loader"]] = text
    if not chains:
        raise RolloutError("no extlinux.conf or grub.cfg below %s: boot loader not supported by the rollout" % boot_dir)
    text = configs.get("grub") or configs["extlinux"]
    # GRUB entry ids are linux-<release> (images made before that used the bare release).
    default = re.search(r'^\s*(?:set default="(?:linux-)?([^"$]+)"|default (\S+))', text, re.MULTILINE)
    devicetree = re.search(r"^\s*(?:devicetree|fdt) /[^/\s]+/dtbs/(\S+)", text, re.MULTILINE)
    uuid = re.search(r"--fs-uuid --set=root (\S+)", configs.get("grub", ""))
    installed = installed_releases(boot_dir)
    default_release = next(group for group in default.groups() if group) if default else running
    entries = [release for release in installed if release in re.findall(r"/([^/\s]+)/Image\b", text)]
    if default_release not in entries:
        raise RolloutError("the default entry %s of the loader config is not an installed kernel below %s"
                           % (default_release, boot_dir))
    return {"format": STATE_FORMAT, "chains": chains, "cmdline": cmdline,
            "devicetree": devicetree.group(1) if devicetree else "",
            "boot_fs_uuid": uuid.group(1) if uuid else "",
            "entries": [{"release": release, "cmdline_extra": ""} for release in entries],
            "default": default_release, "bad": {}}


def free_bytes(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Free bytes per named path, with the device so callers can add up what shares a file system."""
    result = {}
    for name, path in paths.items():
        probe = path
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        stat = os.statvfs(probe)
        result[name] = {"path": path, "device": os.stat(probe).st_dev, "free": stat.f_bavail * stat.f_frsize}
    return result


def read_state(state_file: str, boot_dir: str, running: str, proc_cmdline: str,
               chain: str | None = None) -> tuple[dict[str, Any], bool]:
    """(boot state, adopted now)."""
    text = _read(state_file)
    if text is None:
        return adopt(boot_dir, running, proc_cmdline, chain), True
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise RolloutError("%s is not JSON (%s): fix or remove it to adopt the loader config again"
                           % (state_file, exc)) from None
    if state.get("format") == 1:
        state = dict(state, format=STATE_FORMAT, chains=[FORMAT_1_LOADERS[name] for name in state.pop("loaders")])
    return state, False


def space_shortfalls(free: dict[str, dict[str, Any]], needs: dict[str, int]) -> list[str]:
    """What does not fit, per file system: needs of paths on one device are added up."""
    by_device: dict[int, list[str]] = {}
    for name in needs:
        by_device.setdefault(free[name]["device"], []).append(name)
    problems = []
    for names in by_device.values():
        needed = sum(needs[name] for name in names)
        available = free[names[0]]["free"]
        if needed > available:
            problems.append("%s: %d MiB needed (%s), %d MiB free" % (
                " and ".join(free[name]["path"] for name in names), needed >> 20,
                ", ".join("%s %d MiB" % (name, needs[name] >> 20) for name in names), available >> 20))
    return problems


def plan(state: dict[str, Any], release: str, artifact_sha256: str, *, running: str, installed_sha256: str | None,
         keep: int, installed: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What a rollout of `release` does on this board, or why it must not. `remove`: what the commit deletes,
    the oldest entries beyond `keep` and the files of releases marked bad (kept until then for inspection)."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        # The inventory check refuses it first; a negative count here would remove every unprotected kernel.
        raise RolloutError("keep is %r: at least 1 kernel must stay installed" % (keep,))
    known_good = state["default"]
    entries = [entry["release"] for entry in state["entries"]]
    if release in state.get("bad", {}):
        bad = state["bad"][release]
        raise RolloutError("release %s is marked bad on this board (%s, %s): build a new release, or pass "
                           "kernel_rollout_retry_bad=true to try it again"
                           % (release, bad.get("reason"), bad.get("when")))
    if release in (running, known_good) and installed_sha256 not in (None, artifact_sha256):
        raise RolloutError("release %s is installed (and running or the default) with other contents than this "
                           "artifact: a new build must carry a new release string" % release)
    if release == known_good == running and installed_sha256 == artifact_sha256:
        return {"action": "none", "known_good": known_good, "remove": []}
    after = [name for name in entries if name != release] + [release]
    protected = {release, known_good, running}
    removable = [name for name in after if name not in protected]
    surplus = max(0, len(after) - keep)
    bad_left = [name for name in installed if name in state.get("bad", {}) and name not in protected]
    remove = removable[:surplus] + [name for name in bad_left if name not in removable[:surplus]]
    return {"action": "commit-only" if running == release else "rollout", "known_good": known_good,
            "remove": remove}
