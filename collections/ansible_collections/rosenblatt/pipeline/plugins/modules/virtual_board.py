#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: start or stop the virtual board (QEMU on a copy-on-write overlay of a disk image)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: virtual_board
short_description: Start or stop the virtual board, qemu-system-aarch64 on an overlay of the board's image
description:
  - Runs C(qemu-system-aarch64 -M virt -cpu cortex-a76) (TCG) on a qcow2 overlay of O(image), booted through
    edk2 and GRUB or U-Boot and extlinux.conf (O(firmware)), SSH forwarded to 127.0.0.1:O(ssh_port), an
    i6300esb watchdog that resets the machine, the serial console written to C(<run_dir>/console.log).
  - C(started) waits for the SSH banner within O(boot_timeout); on timeout QEMU is stopped and the last
    console lines are in the error. C(stopped) powers the guest down through QMP within O(stop_timeout),
    then terminates QEMU (pid from C(<run_dir>/qemu.pid)). C(absent) stops it and removes O(run_dir).
  - The overlay is kept across starts, like a board's disk, unless O(fresh) or the image changed.
options:
  name:
    description: Name of the board (QEMU's -name, messages).
    type: str
    required: true
  state:
    description: started, stopped or absent.
    type: str
    choices: [started, stopped, absent]
    default: started
  image:
    description: Raw disk image the overlay is backed by (needed for C(started)).
    type: path
  run_dir:
    description: Folder for the overlay, pidfile, QMP socket, EFI variables and console log.
    type: path
    required: true
  firmware:
    description: edk2 (then GRUB) or u-boot (then extlinux.conf).
    type: str
    choices: [edk2, u-boot]
    default: edk2
  ssh_port:
    description: Loopback port forwarded to the guest's port 22.
    type: int
    default: 2222
  memory_mib:
    description: Guest memory.
    type: int
    default: 2048
  cpus:
    description: Guest CPUs.
    type: int
    default: 2
  boot_timeout:
    description: Seconds from start to the SSH banner.
    type: int
    default: 600
  stop_timeout:
    description: Seconds for the guest to power down before QEMU is terminated.
    type: int
    default: 60
  fresh:
    description: Start from a new overlay (the image as built), dropping what the board wrote.
    type: bool
    default: false
  edk2_code:
    description: edk2 firmware code (pflash 0).
    type: path
    default: /usr/share/AAVMF/AAVMF_CODE.fd
  edk2_vars:
    description: edk2 variable store template, copied per board (pflash 1).
    type: path
    default: /usr/share/AAVMF/AAVMF_VARS.fd
  uboot:
    description: U-Boot for QEMU's virt machine.
    type: path
    default: /usr/lib/u-boot/qemu_arm64/u-boot.bin
  extra_args:
    description: More QEMU arguments.
    type: list
    elements: str
    default: []
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Start the virtual board
  rosenblatt.pipeline.virtual_board:
    name: virtual-uefi
    image: "{{ board_image_path }}"
    run_dir: /var/tmp/virtual-uefi
    firmware: edk2
    ssh_port: 2231
"""

RETURN = r"""
action:
  description: started, running, stopped or not-running.
  type: str
  returned: always
boot_seconds:
  description: Seconds from QEMU's start to the SSH banner.
  type: float
  returned: when started
method:
  description: How QEMU ended (powerdown, terminate, kill).
  type: str
  returned: when stopped
console_log:
  description: Serial console log file.
  type: str
  returned: always
command:
  description: The QEMU command line.
  type: list
  returned: always
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.virtual_board import (
    BoardError,
    Spec,
    check_spec,
    qemu_argv,
    running_pid,
    start,
    stop,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["started", "stopped", "absent"], "default": "started"},
            "image": {"type": "path"},
            "run_dir": {"type": "path", "required": True},
            "firmware": {"type": "str", "choices": ["edk2", "u-boot"], "default": "edk2"},
            "ssh_port": {"type": "int", "default": 2222},
            "memory_mib": {"type": "int", "default": 2048},
            "cpus": {"type": "int", "default": 2},
            "boot_timeout": {"type": "int", "default": 600},
            "stop_timeout": {"type": "int", "default": 60},
            "fresh": {"type": "bool", "default": False},
            "edk2_code": {"type": "path", "default": "/usr/share/AAVMF/AAVMF_CODE.fd"},
            "edk2_vars": {"type": "path", "default": "/usr/share/AAVMF/AAVMF_VARS.fd"},
            "uboot": {"type": "path", "default": "/usr/lib/u-boot/qemu_arm64/u-boot.bin"},
            "extra_args": {"type": "list", "elements": "str", "default": []},
        },
        required_if=[("state", "started", ("image",))],
        supports_check_mode=True,
    )
    params = module.params
    spec = Spec(name=params["name"], image=params["image"] or "", run_dir=params["run_dir"],
                firmware=params["firmware"], ssh_port=params["ssh_port"], memory_mib=params["memory_mib"],
                cpus=params["cpus"], edk2_code=params["edk2_code"], edk2_vars=params["edk2_vars"],
                uboot=params["uboot"], extra_args=tuple(params["extra_args"]))
    common = {"console_log": spec.console_log, "command": qemu_argv(spec), "run_dir": spec.run_dir}
    try:
        if module.check_mode:
            running = running_pid(spec) is not None
            if params["state"] == "started":
                if os.path.isfile(spec.image):  # else the image is still to be built in this check run
                    check_spec(spec)
                would = params["fresh"] or not running
            else:
                would = running or (params["state"] == "absent" and os.path.isdir(spec.run_dir))
            module.exit_json(changed=would, action="would-" + params["state"] if would else "unchanged", **common)
        if params["state"] == "started":
            result = start(spec, boot_timeout=params["boot_timeout"], fresh=params["fresh"])
        else:
            result = stop(spec, stop_timeout=params["stop_timeout"])
            if params["state"] == "absent" and os.path.isdir(spec.run_dir):
                shutil.rmtree(spec.run_dir)
                result["changed"] = True
    except BoardError as exc:
        module.fail_json(msg=str(exc), **common)
    module.exit_json(**dict(common, **result))


if __name__ == "__main__":
    main()
