#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: check a kernel artifact folder against its manifest before it is used."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_artifact
short_description: Check a kernel artifact folder (Image, dtbs, modules, config, manifest.json)
description:
  - Verifies that O(path) holds C(Image), C(config), C(manifest.json) and exactly one release under
    C(modules/lib/modules/), and that every file the manifest lists has the sha256 it says.
  - Read-only; supports check mode. Fails with the reason when the artifact must not be used.
options:
  path:
    description: The artifact folder.
    type: path
    required: true
  architecture:
    description: Refuse an Image for another architecture (read from its header); empty accepts any.
    type: str
    default: ""
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Check the kernel before it goes into an image
  rosenblatt.pipeline.kernel_artifact:
    path: "{{ kernel_artifact_dir }}"
  register: artifact
"""

RETURN = r"""
release:
  description: Kernel release (the folder name under modules/lib/modules).
  type: str
  returned: success
manifest_sha256:
  description: sha256 of manifest.json (it names every file, so it identifies the artifact).
  type: str
  returned: success
files_checked:
  description: How many files were hashed and matched the manifest.
  type: int
  returned: success
architecture:
  description: Architecture of the Image (arm64, x86, arm or unknown).
  type: str
  returned: success
sizes:
  description: Bytes the artifact takes on /boot (C(boot)) and below /lib/modules (C(modules)).
  type: dict
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_artifact import ArtifactError, check_artifact


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True},
                                          "architecture": {"type": "str", "default": ""}}, supports_check_mode=True)
    try:
        result = check_artifact(module.params["path"], module.params["architecture"])
    except (ArtifactError, OSError) as exc:
        module.fail_json(msg="kernel artifact refused: %s" % exc, path=module.params["path"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
