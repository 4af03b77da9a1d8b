# Copyright: rosenblatt developers
# MIT License
"""Artifacts are folders with a manifest.json naming every file with its size and sha256.

A stage writes the manifest last, after every file is in place, so a folder with a manifest that
verifies is complete. `files` maps each regular file's relative path to its sha256, `links` each
symbolic link's to its target. The next stage (on the controller or on the board) refuses a folder whose
manifest is missing or does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.atomic_file import write_atomically

MANIFEST = "manifest.json"


def sha256_of(path: str, length: int | None = None) -> str:
    """sha256 of a file, or of its first `length` bytes (an image written to a larger device)."""
    digest = hashlib.sha256()
    remaining = -1 if length is None else length
    with open(path, "rb") as handle:
        while remaining != 0:
            block = handle.read(1 << 22 if remaining < 0 else min(1 << 22, remaining))
            if not block:
                break
            digest.update(block)
            if remaining > 0:
                remaining -= len(block)
    return digest.hexdigest()


def contents(root: str) -> tuple[dict[str, str], dict[str, str]]:
    """({relative path: sha256} of every regular file, {relative path: target} of every link), manifest aside."""
    files, links = {}, {}
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if relative == MANIFEST:
                continue
            if os.path.islink(path):
                links[relative] = os.readlink(path)
            else:
                files[relative] = sha256_of(path)
    return dict(sorted(files.items())), dict(sorted(links.items()))


def build_manifest(root: str, info: dict[str, Any]) -> dict[str, Any]:
    files, links = contents(root)
    return dict(info, files=files, links=links)


def write_manifest(root: str, info: dict[str, Any]) -> dict[str, Any]:
    manifest = build_manifest(root, info)
    write_atomically(os.path.join(root, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: str) -> dict[str, Any]:
    with open(os.path.join(root, MANIFEST), encoding="utf-8") as handle:
        manifest = json.load(handle)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError("%s has no files table" % os.path.join(root, MANIFEST))
    return manifest


def verify(root: str) -> tuple[dict[str, Any] | None, list[str]]:
    """(manifest, problems): every missing, extra, changed or unreadable file is named."""
    try:
        manifest = read_manifest(root)
    except FileNotFoundError:
        return None, ["%s: no %s (not an artifact, or an interrupted build)" % (root, MANIFEST)]
    except (OSError, ValueError) as error:
        return None, ["%s: unreadable %s (%s)" % (root, MANIFEST, error)]
    files, links = contents(root)
    problems = []
    for kind, expected, actual in (("file", manifest["files"], files), ("link", manifest.get("links", {}), links)):
        for relative in sorted(set(expected) - set(actual)):
            problems.append("%s: missing" % relative)
        for relative in sorted(set(actual) - set(expected)):
            problems.append("%s: a %s not in the manifest" % (relative, kind))
        for relative in sorted(set(expected) & set(actual)):
            if expected[relative] != actual[relative]:
                problems.append("%s: is %s, the manifest says %s" % (relative, actual[relative], expected[relative]))
    return manifest, problems
