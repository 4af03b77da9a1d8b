#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: read a board's boot state and plan a kernel rollout on it, without changing anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_rollout_plan
short_description: Plan a kernel rollout on a board (boot state, free space, what would be removed)
description:
  - Reads the board's boot state file (installed kernels, default, bad releases, command line), or makes the
    first one when the file does not exist yet, from loader configs rendered by rosenblatt or, on a chain whose
    distribution generates grub.cfg, with the running distribution kernel as the default.
  - Decides what a rollout of O(release) does, refuses a release marked bad or a release string reused
    with other contents, and checks that the kernel, its modules and the staged copy fit on their file
    systems (needs of paths on one file system are added up).
  - Read-only; supports check mode. Returns the state for the role to write when it changes things.
options:
  release:
    description: Kernel release of the artifact.
    type: str
    required: true
  artifact_sha256:
    description: sha256 of the artifact's manifest.json; tells whether an installed release is this artifact.
    type: str
    required: true
  needs:
    description: Bytes needed per area, keys C(boot), C(modules), C(staging).
    type: dict
    required: true
  keep:
    description: How many kernels stay installed after a commit (the running and the known-good one always stay).
    type: int
    default: 3
  chain:
    description: The board's boot chain (board facts), which says how a first boot state is made.
    type: str
  retry_bad:
    description: Allow a release the board has marked bad.
    type: bool
    default: false
  state_file:
    description: The boot state file.
    type: path
    default: /var/lib/rosenblatt/state/boot.json
  staging_dir:
    description: Where the artifact is staged on the board.
    type: path
    default: /var/lib/rosenblatt/staging
extends_documentation_fragment:
  - rosenblatt.pipeline.kernel_paths
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Plan the rollout
  rosenblatt.pipeline.kernel_rollout_plan:
    release: 7.2.13-rosenblatt-f7e292333492eafa
    artifact_sha256: "{{ artifact.manifest_sha256 }}"
    needs: {boot: 60000000, modules: 120000000, staging: 180000000}
  register: rollout_plan
"""

RETURN = r"""
state:
  description: The boot state (format, chains, cmdline, devicetree, boot_fs_uuid, entries, default, bad).
  type: dict
  returned: always
adopted:
  description: The state was built now from the loader config (no state file yet).
  type: bool
  returned: always
running:
  description: Release of the running kernel.
  type: str
  returned: always
installed_sha256:
  description: The artifact manifest sha256 the installed O(release) came from, or null.
  type: str
  returned: always
plan:
  description: C(action) (none, rollout or commit-only), C(known_good), C(remove) (releases pruned on commit,
    entries beyond O(keep) and files of releases marked bad).
  type: dict
  returned: success
free:
  description: Free bytes and device per area.
  type: dict
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_rollout import (
    PATHS_SPEC,
    RolloutError,
    free_bytes,
    installed_artifact,
    installed_releases,
    plan,
    read_state,
    space_shortfalls,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "release": {"type": "str", "required": True},
            "artifact_sha256": {"type": "str", "required": True},
            "needs": {"type": "dict", "required": True},
            "keep": {"type": "int", "default": 3},
            "retry_bad": {"type": "bool", "default": False},
            "chain": {"type": "str"},
            "state_file": {"type": "path", "default": "/var/lib/rosenblatt/state/boot.json"},
            **PATHS_SPEC,
            "staging_dir": {"type": "path", "default": "/var/lib/rosenblatt/staging"},
        },
        supports_check_mode=True,
    )
    params = module.params
    running = os.uname().release
    with open("/proc/cmdline", encoding="utf-8") as stream:
        proc_cmdline = stream.read()
    installed_sha256 = installed_artifact(os.path.join(params["boot_dir"], params["release"]))
    free = free_bytes({"boot": params["boot_dir"], "modules": params["modules_dir"], "staging": params["staging_dir"]})
    result = {"changed": False, "running": running, "installed_sha256": installed_sha256, "free": free}
    try:
        state, adopted = read_state(params["state_file"], params["boot_dir"], running, proc_cmdline,
                                     params["chain"])
        result.update(state=state, adopted=adopted)
        if params["retry_bad"] and params["release"] in state.get("bad", {}):
            state = dict(state, bad={name: bad for name, bad in state["bad"].items() if name != params["release"]})
            result["state"] = state
        result["plan"] = plan(state, params["release"], params["artifact_sha256"], running=running,
                              installed_sha256=installed_sha256, keep=params["keep"],
                              installed=installed_releases(params["boot_dir"]))
    except RolloutError as exc:
        module.fail_json(msg=str(exc), **result)
    if result["plan"]["action"] == "rollout" and installed_sha256 != params["artifact_sha256"]:
        needs = {name: int(params["needs"].get(name, 0)) for name in ("boot", "modules", "staging")}
        shortfalls = space_shortfalls(free, needs)
        if shortfalls:
            module.fail_json(msg="not enough space for %s, nothing was written: %s"
                             % (params["release"], "; ".join(shortfalls)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
