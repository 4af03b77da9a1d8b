# Copyright: rosenblatt developers
# MIT License
"""What a stage requires of a kernel artifact folder before it installs it.

The kernel stage hands on a folder with `Image`, `dtbs/`, `modules/lib/modules/<release>/`, `config`
and `manifest.json` (`artifact_manifest`: the sha256 of every file, the target of every link). Every
file is checked; a folder whose manifest does not verify is refused.
"""

from __future__ import annotations

import gzip
import os
import struct
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of, verify

REQUIRED = ("Image", "config", "manifest.json")
ARM64_MAGIC = b"ARM\x64"  # offset 56 of an arm64 Image (Documentation/arch/arm64/booting.rst)


class ArtifactError(Exception):
    """An artifact that must not be used, with the reason."""


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


def check_artifact(path: str, expect_architecture: str = "", *, installable: bool = True) -> dict[str, Any]:
    """Release, manifest (and its sha256), architecture and sizes of a usable artifact; ArtifactError naming
    what makes it unusable. Every file must match the manifest. An installable artifact (what the rollout
    installs) also needs Image, config and the modules of one release; the kernel stage checks its cached
    builds with `installable` False when its make targets leave some out (modules_prepare, dtbs only)."""
    if not os.path.isdir(path):
        raise ArtifactError("%s is not a folder" % path)
    required = REQUIRED if installable else ("manifest.json",)
    missing = [name for name in required if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ArtifactError("%s lacks %s" % (path, ", ".join(missing)))
    modules = os.path.join(path, "modules", "lib", "modules")
    releases = sorted(os.listdir(modules)) if os.path.isdir(modules) else []
    if len(releases) > 1 or (installable and not releases):
        raise ArtifactError("%s: expected one release under modules/lib/modules, found %s" % (path, releases or "none"))
    manifest_path = os.path.join(path, "manifest.json")
    manifest, problems = verify(path)
    if manifest is None:
        raise ArtifactError("; ".join(problems))
    declared = manifest.get("release")
    if declared and releases and declared != releases[0]:
        raise ArtifactError("%s says release %s but the modules are for %s" % (manifest_path, declared, releases[0]))
    if installable and "Image" not in manifest["files"]:
        raise ArtifactError("%s does not list Image" % manifest_path)
    if problems:
        raise ArtifactError("%s does not match its manifest: %s" % (path, "; ".join(problems)))
    image = os.path.join(path, "Image")
    architecture = image_architecture(image) if os.path.isfile(image) else "none"
    if expect_architecture and os.path.isfile(image) and architecture != expect_architecture:
        raise ArtifactError("%s/Image is a %s kernel, not %s" % (path, architecture, expect_architecture))
    return {"release": releases[0] if releases else declared, "manifest_sha256": sha256_of(manifest_path),
            "files_checked": len(manifest["files"]), "architecture": architecture,
            "sizes": artifact_sizes(path, manifest), "manifest": manifest}
