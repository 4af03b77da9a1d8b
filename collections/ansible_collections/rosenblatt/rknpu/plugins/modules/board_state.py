#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: what the pipeline's stages recorded on a board (kernel, runtime, model, verification)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: board_state
short_description: Read what rosenblatt's stages installed on a board
description:
  - Reads every C(<component>.json) in the state folder, where each stage records what it installed
    (C(kernel), C(runtime), C(model)) or found (C(verify)). Returned as C(ansible_facts.rosenblatt_state).
  - A missing folder is an empty state (no stage ran yet); an unreadable file is listed in C(problems).
  - Read-only; supports check mode.
options:
  state_dir:
    description: The state folder (C(rosenblatt_state_dir)).
    type: path
    required: true
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Read the board's state
  rosenblatt.rknpu.board_state:
    state_dir: "{{ rosenblatt_state_dir }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the key C(rosenblatt_state).
  returned: always
  type: dict
  contains:
    rosenblatt_state:
      description: C(components) (component name to its record) and C(problems) (unreadable files).
      type: dict
      returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.board_state import read_state


def main() -> None:
    module = AnsibleModule(argument_spec={"state_dir": {"type": "path", "required": True}}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"rosenblatt_state": read_state(module.params["state_dir"])})


if __name__ == "__main__":
    main()
