# Copyright: rosenblatt developers
# MIT License
"""What a stage requires of a kernel artifact folder before it installs it.

The kernel stage hands on a folder with `Image`, `dtbs/`, `modules/lib/modules/<release>/`, `config`
and `manifest.json` (`artifact_manifest`: the sha256 of every file, the target of every link). Every
file is checked; a folder whose manifest does not verify is refused.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.artifact_manifest import sha256_of, verify

REQUIRED = ("Image", "config", "manifest.json")


class ArtifactError(Exception):
    """An artifact that must not be used, with the reason."""


def check_artifact(path: str) -> dict[str, Any]:
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
    try:
        with open(manifest_path, encoding="utf-8") as stream:
            manifest = json.load(stream)
    except ValueError as exc:
        raise ArtifactError("%s is not JSON: %s" % (manifest_path, exc)) from exc
    if not isinstance(manifest, dict):
        raise ArtifactError("%s is not a JSON object" % manifest_path)
    declared = manifest.get("release")
    if declared and declared != releases[0]:
        raise ArtifactError("%s says release %s but the modules are for %s" % (manifest_path, declared, releases[0]))
    if "Image" not in manifest.get("files", {}):
        raise ArtifactError("%s does not list Image" % manifest_path)
    _, problems = verify(path)
    if problems:
        raise ArtifactError("%s does not match its manifest: %s" % (path, "; ".join(problems)))
    return {"release": releases[0], "manifest_sha256": sha256_of(manifest_path),
            "files_checked": len(manifest["files"])}
