# Copyright: rosenblatt developers
# MIT License
"""What a stage requires of a kernel artifact folder before it installs it.

The kernel stage hands on a folder with `Image`, `dtbs/`, `modules/lib/modules/<release>/`, `config`
and `manifest.json` (`artifact_manifest`: the sha256 of every file, the target of every link). Every
file is checked; a folder whose manifest does not verify is refused.
"""

from __future__ import annotations

import os
from typing import Any

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.artifact_manifest import sha256_of, verify
from ansible_collections.rosenblatt.rknpu.plugins.module_utils.kernel_rollout import artifact_sizes, image_architecture

REQUIRED = ("Image", "config", "manifest.json")


class ArtifactError(Exception):
    """An artifact that must not be used, with the reason."""


def check_artifact(path: str, expect_architecture: str = "") -> dict[str, Any]:
    if not os.path.isdir(path):
        raise ArtifactError("%s is not a folder" % path)
    missing = [name for name in REQUIRED if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ArtifactError("%s lacks %s" % (path, ", ".join(missing)))
    modules = os.path.join(path, "modules", "lib", "modules")
    releases = sorted(os.listdir(modules)) if os.path.isdir(modules) else []
    if len(releases) != 1:
        raise ArtifactError("%s: expected one release under modules/lib/modules, found %s" % (path, releases or "none"))
    manifest_path = os.path.join(path, "manifest.json")
    manifest, problems = verify(path)
    if manifest is None:
        raise ArtifactError("; ".join(problems))
    declared = manifest.get("release")
    if declared and declared != releases[0]:
        raise ArtifactError("%s says release %s but the modules are for %s" % (manifest_path, declared, releases[0]))
    if "Image" not in manifest["files"]:
        raise ArtifactError("%s does not list Image" % manifest_path)
    if problems:
        raise ArtifactError("%s does not match its manifest: %s" % (path, "; ".join(problems)))
    architecture = image_architecture(os.path.join(path, "Image"))
    if expect_architecture and architecture != expect_architecture:
        raise ArtifactError("%s/Image is a %s kernel, not %s" % (path, architecture, expect_architecture))
    return {"release": releases[0], "manifest_sha256": sha256_of(manifest_path),
            "files_checked": len(manifest["files"]), "architecture": architecture,
            "sizes": artifact_sizes(path, manifest)}
