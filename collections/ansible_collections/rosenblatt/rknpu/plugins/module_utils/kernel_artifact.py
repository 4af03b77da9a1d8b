# Copyright: rosenblatt developers
# MIT License
"""What a stage requires of a kernel artifact folder before it installs it.

The kernel stage hands on a folder with `Image`, `dtbs/`, `modules/lib/modules/<release>/`, `config`
and `manifest.json`; the manifest lists the sha256 of its files (`files` as a mapping of relative
path to sha256, or a list of {path, sha256}). Every listed file is checked; a folder whose manifest
does not verify is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

REQUIRED = ("Image", "config", "manifest.json")


class ArtifactError(Exception):
    """An artifact that must not be used, with the reason."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_files(manifest: dict[str, Any]) -> dict[str, str]:
    files = manifest.get("files")
    if isinstance(files, dict):
        return {str(path): str(digest) for path, digest in files.items()}
    if isinstance(files, list) and all(isinstance(entry, dict) for entry in files):
        return {str(entry.get("path")): str(entry.get("sha256")) for entry in files}
    raise ArtifactError("manifest.json has no 'files' (a mapping of path to sha256, or a list of {path, sha256})")


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
    declared = manifest.get("release") or manifest.get("kernel_release")
    if declared and declared != releases[0]:
        raise ArtifactError("%s says release %s but the modules are for %s" % (manifest_path, declared, releases[0]))
    listed = _listed_files(manifest)
    if "Image" not in listed:
        raise ArtifactError("%s does not list Image" % manifest_path)
    for relative, expected in sorted(listed.items()):
        full = os.path.normpath(os.path.join(path, relative))
        if not full.startswith(os.path.abspath(path) + os.sep) or not os.path.isfile(full):
            raise ArtifactError("%s lists %s, which is not a file in the artifact" % (manifest_path, relative))
        actual = _sha256(full)
        if actual != expected:
            raise ArtifactError("%s: sha256 %s, the manifest says %s" % (full, actual, expected))
    return {"release": releases[0], "manifest_sha256": _sha256(manifest_path), "files_checked": len(listed)}
