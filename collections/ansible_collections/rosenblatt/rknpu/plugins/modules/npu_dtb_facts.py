#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: does a device tree enable the RK3588 NPU for the rocket driver?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: npu_dtb_facts
short_description: Check that a DTB enables the three RK3588 NPU cores, their IOMMUs and supplies
description:
  - Reads a flattened device tree (a .dtb file, or /sys/firmware/fdt for the tree the running kernel
    booted with) without external tools and reports the C(rockchip,rk3588-rknn-core) nodes, their
    status, C(npu-supply), IOMMU and assigned clock rate.
  - Fails, naming every problem, unless there are exactly three cores, each with status okay, an
    C(npu-supply) that points to a node, and an IOMMU with status okay; with O(fail_on_problems=false)
    it only reports. Never changes anything.
options:
  path:
    description: The DTB to read.
    type: path
    required: true
  fail_on_problems:
    description: Fail when the NPU is not enabled as rocket needs it.
    type: bool
    default: true
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Check the live device tree
  rosenblatt.rknpu.npu_dtb_facts:
    path: /sys/firmware/fdt
"""

RETURN = r"""
ansible_facts:
  description: C(npu_dtb) with model, cores (path, status, npu_supply, iommu, iommu_enabled,
    assigned_clock_rates), problems and ok.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.fdt import FdtError, npu_report, read


def main() -> None:
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "required": True},
                       "fail_on_problems": {"type": "bool", "default": True}},
        supports_check_mode=True,
    )
    try:
        report = npu_report(read(module.params["path"]))
    except FdtError as exc:
        module.fail_json(msg=str(exc))
    report["path"] = module.params["path"]
    if module.params["fail_on_problems"] and not report["ok"]:
        module.fail_json(msg="%s does not enable the NPU: %s" % (module.params["path"], "; ".join(report["problems"])),
                         ansible_facts={"npu_dtb": report})
    module.exit_json(changed=False, ansible_facts={"npu_dtb": report})


if __name__ == "__main__":
    main()
