#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: boot chain, boot loader, distribution and initramfs tool of a board."""

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
  - Returned as C(ansible_facts.board). Later stages branch on these facts. Read-only; supports check mode.
options:
  root:
    description: Root of the tree to inspect; C(/) for the live system.
    type: path
    default: /
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Detect the boot chain
  rosenblatt.rknpu.board_facts:

- name: Branch on it
  ansible.builtin.debug:
    msg: "{{ ansible_facts.board.boot_chain }} via {{ ansible_facts.board.boot_loader.config }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the key C(board).
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.board_probe import probe


def main() -> None:
    module = AnsibleModule(argument_spec={"root": {"type": "path", "default": "/"}}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"board": probe(root=module.params["root"])})


if __name__ == "__main__":
    main()
