#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: boot chain, boot loader, distribution and initramfs tool of a board, what the stages
recorded on it, and its NPU's state."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: board_facts
short_description: Report how a board boots and what it runs
description:
  - Detects the firmware (edk2/UEFI or U-Boot), the boot loader and its config file (GRUB,
    systemd-boot, extlinux, U-Boot script), the resulting C(boot_chain), where the live device
    tree came from when the loader config tells, the distribution family, the initramfs tool
    (mkinitcpio, dracut, initramfs-tools), RAM, watchdog devices, kexec, CPU governors, the NPU's clock
    and whether systemd runs the system.
  - Returned as C(ansible_facts.board). Later stages branch on these facts.
  - With I(state_dir), also reads every C(<component>.json) there, where each stage records what it
    installed (C(kernel), C(runtime), C(model)) or found (C(verify)), as C(ansible_facts.rosenblatt_state).
    A missing folder is an empty state (no stage ran yet); an unreadable file is listed in C(problems).
  - With I(npu_probe_path), also probes the NPU as M(rosenblatt.pipeline.rknpu_facts) does (the same
    C(module_utils/rknpu_probe.py)), as C(ansible_facts.rknpu).
  - One module run for all of them (the fleet report reads every board, and each run costs the board a Python
    start and the controller an SSH round trip).
  - Read-only; supports check mode.
options:
  root:
    description: Root of the tree to inspect; C(/) for the live system.
    type: path
    default: /
  state_dir:
    description: The state folder (C(rosenblatt_state_dir)) to read; not read when omitted.
    type: path
  npu_probe_path:
    description:
      - Path of the C(npu-probe) self-test program on the target, as for M(rosenblatt.pipeline.rknpu_facts)
        (run when it exists and an accel node is present); the NPU is not probed when omitted.
    type: path
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Detect the boot chain
  rosenblatt.pipeline.board_facts:

- name: Branch on it
  ansible.builtin.debug:
    msg: "{{ ansible_facts.board.boot_chain }} via {{ ansible_facts.board.boot_loader.config }}"

- name: Detect the board and read what the stages installed on it
  rosenblatt.pipeline.board_facts:
    state_dir: "{{ rosenblatt_state_dir }}"

- name: The same, and the NPU, in one module run
  rosenblatt.pipeline.board_facts:
    state_dir: "{{ rosenblatt_state_dir }}"
    npu_probe_path: /opt/rosenblatt/runtime/current/bin/npu-probe
"""

RETURN = r"""
ansible_facts:
  description: Facts under the keys C(board), with I(state_dir) C(rosenblatt_state), with I(npu_probe_path) C(rknpu).
  returned: always
  type: dict
  contains:
    board:
      description: >-
        kernel_release, architecture, model, firmware (kind, uefi, vendor, version), boot_loader
        (name, config), boot_chain (uefi-grub, uefi-systemd-boot, uboot-extlinux, uboot-script, unknown),
        device_tree_source, distribution (id, name, version_id, family), initramfs_tool, memory_mib,
        watchdogs, kexec, cpu_governors (cpuN: governor), npu_devfreq (name, cur_freq_hz, governor; null
        without one), systemd (whether systemd runs the system).
      type: dict
      returned: always
    rosenblatt_state:
      description: C(components) (component name to its record) and C(problems) (unreadable files).
      type: dict
      returned: when I(state_dir) is given
    rknpu:
      description: The NPU's facts and verdict, as M(rosenblatt.pipeline.rknpu_facts) returns them.
      type: dict
      returned: when I(npu_probe_path) is given
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_probe import probe
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_state import read_state
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import probe as probe_npu


def main() -> None:
    module = AnsibleModule(argument_spec={"root": {"type": "path", "default": "/"}, "state_dir": {"type": "path"},
                                          "npu_probe_path": {"type": "path"}},
                           supports_check_mode=True)
    facts = {"board": probe(root=module.params["root"])}
    if module.params["state_dir"]:
        facts["rosenblatt_state"] = read_state(module.params["state_dir"])
    if module.params["npu_probe_path"]:
        facts["rknpu"] = probe_npu(root=module.params["root"], npu_probe_path=module.params["npu_probe_path"])
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
