#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: write or verify an artifact folder's manifest.json (sha256 of every file)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: artifact_manifest
short_description: Write or verify the manifest of an artifact folder
description:
  - With O(state=present), hashes every file below O(path) and writes C(manifest.json) there (last, by
    rename), adding O(info). Changed when the manifest did not exist or differed.
  - With O(state=verified), checks every file against C(manifest.json) and fails naming each missing,
    extra or changed file. Never changes anything. Runs on the controller or on a board.
  - Supports check mode.
options:
  path:
    description: The artifact folder.
    type: path
    required: true
  state:
    description: Write the manifest, or verify the folder against it.
    type: str
    choices: [present, verified]
    default: verified
  info:
    description: What the manifest says besides the files (release, sources, toolchain, build time...).
    type: dict
    default: {}
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Seal the artifact
  rosenblatt.pipeline.artifact_manifest:
    path: /cache/artifacts/runtime/abc123.tmp
    state: present
    info:
      component: runtime

- name: Refuse an artifact that does not verify
  rosenblatt.pipeline.artifact_manifest:
    path: /opt/rosenblatt/runtime/abc123
"""

RETURN = r"""
manifest:
  description: The manifest (info keys plus C(files), relative path to sha256, and C(links), relative path to target).
  returned: when it could be read or written
  type: dict
problems:
  description: Every difference between the folder and its manifest.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import (
    build_manifest,
    verify,
    write_manifest,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "verified"], "default": "verified"},
            "info": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    root, state, info = module.params["path"], module.params["state"], module.params["info"]
    if not os.path.isdir(root):
        module.fail_json(msg="%s is not a folder" % root, problems=["%s: missing" % root])
    if state == "verified":
        manifest, problems = verify(root)
        if problems:
            module.fail_json(msg="%s does not match its manifest: %s" % (root, "; ".join(problems)),
                             problems=problems, manifest=manifest)
        module.exit_json(changed=False, manifest=manifest, problems=[])
    before, _ = verify(root)
    wanted = build_manifest(root, info)
    changed = before != wanted
    if changed and not module.check_mode:
        wanted = write_manifest(root, info)
    module.exit_json(changed=changed, manifest=wanted, problems=[])


if __name__ == "__main__":
    main()
