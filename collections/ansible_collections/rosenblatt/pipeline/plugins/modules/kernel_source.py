#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: a pristine kernel source tree in the cache (git tag, tarball, directory or Debian package)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_source
short_description: Put a pristine kernel source tree in the cache
description:
  - Fetches and unpacks the kernel source once into O(cache_dir)/sources/, under a temporary name then
    renamed, and returns its path and an exact C(source_id) for the build's input hash.
  - C(git) shallow-clones O(git_tag) of O(git_url) (an unknown tag fails before anything is written);
    C(tarball) unpacks O(path); C(dir) uses the tree at O(path) in place; C(debian) downloads Debian's
    O(debian_package) at O(debian_version) from O(debian_mirror) O(debian_suite) with a private apt
    configuration under O(cache_dir)/apt and unpacks the source tarball it holds.
  - Supports check mode.
options:
  type:
    description: Kind of source.
    type: str
    choices: [git, tarball, dir, debian]
    required: true
  cache_dir:
    description: Controller (or build host) folder for sources and downloads.
    type: path
    required: true
  git_url:
    description: Repository URL (type git).
    type: str
    default: ""
  git_tag:
    description: Tag to build (type git).
    type: str
    default: ""
  path:
    description: Tarball or directory (types tarball and dir).
    type: path
    default: ""
  debian_package:
    description: Debian source package such as linux-source-7.2 (type debian).
    type: str
    default: ""
  debian_version:
    description: Exact Debian version such as 7.2.13-1 (type debian).
    type: str
    default: ""
  debian_mirror:
    description: Debian mirror URL (type debian).
    type: str
    default: http://deb.debian.org/debian
  debian_suite:
    description: Debian suite (type debian).
    type: str
    default: sid
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Kernel source from the pinned stable tag
  rosenblatt.pipeline.kernel_source:
    type: git
    git_url: "{{ rosenblatt_kernel_git_url }}"
    git_tag: "{{ rosenblatt_kernel_tag }}"
    cache_dir: "{{ cache }}/kernel"
"""

RETURN = r"""
path:
  description: The pristine source tree.
  type: str
  returned: always
source_id:
  description: Exact identity of the source (tag and commit, package version and .deb sha256, tarball sha256).
  type: str
  returned: always
version:
  description: Kernel version from the tree's Makefile (empty in check mode before the first fetch).
  type: str
  returned: always
action:
  description: present, cloned, extracted, used-in-place or would-fetch.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_source import KINDS, SourceError, prepare


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "type": {"type": "str", "required": True, "choices": list(KINDS)},
            "cache_dir": {"type": "path", "required": True},
            "git_url": {"type": "str", "default": ""},
            "git_tag": {"type": "str", "default": ""},
            "path": {"type": "path", "default": ""},
            "debian_package": {"type": "str", "default": ""},
            "debian_version": {"type": "str", "default": ""},
            "debian_mirror": {"type": "str", "default": "http://deb.debian.org/debian"},
            "debian_suite": {"type": "str", "default": "sid"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        source = prepare(params["type"], params["cache_dir"], git_url=params["git_url"], git_tag=params["git_tag"],
                         path=params["path"], debian_package=params["debian_package"],
                         debian_version=params["debian_version"], debian_mirror=params["debian_mirror"],
                         debian_suite=params["debian_suite"], check_mode=module.check_mode)
    except (SourceError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=source.changed, action=source.action, path=source.path, source_id=source.source_id,
                     version=source.version)


if __name__ == "__main__":
    main()
