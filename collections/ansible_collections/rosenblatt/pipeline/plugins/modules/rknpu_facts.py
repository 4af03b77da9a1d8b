#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: RK3588 NPU facts under the mainline rocket driver."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rknpu_facts
short_description: Report the state of the RK3588 NPU under the mainline rocket driver
description:
  - Reads the device tree, the kernel config, module and sysfs state, C(/dev/accel) nodes
    (with C(DRM_IOCTL_VERSION)) and the driver's kernel log lines, and returns them as
    C(ansible_facts.rknpu) with a single C(verdict) and a message saying what to do.
  - On a machine that is not an RK3588 it returns the verdict C(no-npu-in-dt); it never fails
    for a missing NPU.
  - Read-only; supports check mode.
options:
  root:
    description: Root of the tree to inspect; C(/) for the live system, a fixture or mounted image otherwise.
    type: path
    default: /
  npu_probe_path:
    description:
      - Path of the C(npu-probe) self-test program on the target (built from C(userspace/npu-probe)).
        When it exists and an accel node is present, it runs a GEMM on every NPU core against a CPU
        reference; its JSON result is added as C(selftest), each entry of C(bound_cores) gets
        C(functional) (true/false, null when npu-probe did not run) and a failed self-test gives
        C(selftest-failed).
    type: path
    default: /usr/local/bin/npu-probe
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Probe the NPU
  rosenblatt.pipeline.rknpu_facts:

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ ansible_facts.rknpu.verdict }}: {{ ansible_facts.rknpu.message }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the key C(rknpu).
  returned: always
  type: dict
  contains:
    rknpu:
      description: >-
        kernel_release, kernel_config, device_tree (cores with status, supplies, IOMMU),
        module (state loaded/builtin/available/absent), accel_nodes (driver name, version, errors),
        bound_cores (runtime PM status, IOMMU group, functional from the npu-probe self-test),
        deferred_devices, clock_rate_hz, kernel_log, selftest, enabled_cores, working_cores,
        verdict, verdict_rank (position in verdict_order, worst first), verdict_order, verdict_detail
        (the cores that failed), message.
      type: dict
      returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import probe


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "npu_probe_path": {"type": "path", "default": "/usr/local/bin/npu-probe"},
        },
        supports_check_mode=True,
    )
    facts = probe(root=module.params["root"], npu_probe_path=module.params["npu_probe_path"])
    module.exit_json(changed=False, ansible_facts={"rknpu": facts})


if __name__ == "__main__":
    main()
