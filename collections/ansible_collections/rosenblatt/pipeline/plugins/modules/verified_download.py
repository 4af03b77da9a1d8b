#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: download once, resumably, keep only what matches the sha256."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verified_download
short_description: Download a large file once, resumably, and keep it only if its sha256 matches
description:
  - Downloads O(url) to O(dest) through C(<dest>.part), resuming an interrupted download with an HTTP
    Range request, and renames it to O(dest) only once the whole content hashed to O(sha256).
  - A file already at O(dest) with the right sha256 is left alone (changed=false). One with another
    sha256 is removed, so a bad file is never left where it could be mistaken for the good one.
  - Checks free space before writing. Supports check mode.
options:
  url:
    description: http(s) URL, file:// URL or absolute path of the source.
    type: str
    required: true
  sha256:
    description: Expected sha256 of the content (64 hex digits).
    type: str
    required: true
  dest:
    description: Where the verified file goes.
    type: path
    required: true
  reserve_mib:
    description: Free space to leave on the destination file system after the download.
    type: int
    default: 64
  timeout:
    description: Seconds to wait for the server to answer or send data.
    type: int
    default: 60
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Fetch the model into the controller cache
  rosenblatt.pipeline.verified_download:
    url: "{{ rosenblatt_model_url }}"
    sha256: "{{ rosenblatt_model_sha256 }}"
    dest: "{{ cache }}/models/{{ rosenblatt_model_sha256 }}.gguf"
"""

RETURN = r"""
action:
  description: present, downloaded, resumed, copied or would-download.
  type: str
  returned: always
size:
  description: Size of the verified file in bytes (0 in check mode when nothing is there yet).
  type: int
  returned: always
resumed_from:
  description: Byte offset the download resumed from (0 when it started from the beginning).
  type: int
  returned: always
removed_bad:
  description: Whether a file with a wrong sha256 was found at dest and removed.
  type: bool
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.verified_download import DownloadError, fetch


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "sha256": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "reserve_mib": {"type": "int", "default": 64},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        outcome = fetch(params["url"], params["sha256"], params["dest"], reserve_bytes=params["reserve_mib"] << 20,
                        timeout=params["timeout"], check_mode=module.check_mode)
    except (DownloadError, OSError) as exc:
        module.fail_json(msg=str(exc), dest=params["dest"])
    module.exit_json(changed=outcome.changed, action=outcome.action, size=outcome.size,
                     resumed_from=outcome.resumed_from, removed_bad=outcome.removed_bad, dest=params["dest"])


if __name__ == "__main__":
    main()
