#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: write a disk image to a block device on the controller, guarded, verified by read-back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flash_block_device
short_description: Write a disk image to a block device, refusing the wrong device, verifying by read-back
description:
  - Before anything is written, refuses O(device) when it is not a whole block device, when it or one of
    its partitions is mounted, used as swap or held (LVM, dm-crypt, RAID), when it holds the controller's
    root file system, when its size differs from O(size_bytes), when O(serial) or O(model) are given and
    differ, or when the image does not fit.
  - Reads the first (image size) bytes of the device; when their sha256 is already O(sha256), nothing is
    written (changed=false). Else writes the image (device opened with O_EXCL, so the kernel refuses a
    device claimed meanwhile), flushes it, drops the cache and reads the range back, whose sha256 must be
    O(sha256).
  - Check mode runs every guard and the comparison, and reports what would be written.
options:
  device:
    description: The block device (a /dev/disk/by-id/ path is best, as it names the medium, not a slot).
    type: path
    required: true
  image:
    description: Raw disk image to write.
    type: path
    required: true
  sha256:
    description: sha256 of the image (from its manifest); the image itself is checked against it first.
    type: str
    required: true
  size_bytes:
    description: Size the inventory says the device has.
    type: int
    required: true
  serial:
    description: Serial the inventory says the device has (checked when given).
    type: str
  model:
    description: Model the inventory says the device has (checked when given).
    type: str
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Write the image to the SD card in the controller's reader
  rosenblatt.pipeline.flash_block_device:
    device: /dev/disk/by-id/usb-Generic_STORAGE_DEVICE_000000001206-0:0
    image: "{{ board_image_path }}"
    sha256: "{{ board_image_manifest.sha256 }}"
    size_bytes: 63864569856
    model: STORAGE DEVICE
"""

RETURN = r"""
device:
  description: What the controller knows of the device, with path, name, size_bytes, serial and model.
  type: dict
  returned: always
action:
  description: written, already-written, would-write.
  type: str
  returned: success
written_bytes:
  description: Bytes written (0 when nothing was written).
  type: int
  returned: success
readback_sha256:
  description: sha256 of the device's first image-size bytes, read after writing (or before, when unchanged).
  type: str
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.block_device import (
    GuardError,
    describe,
    device_sha256,
    guard,
    write_image,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "device": {"type": "path", "required": True},
            "image": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "size_bytes": {"type": "int", "required": True},
            "serial": {"type": "str"},
            "model": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    device = params["device"]
    if not os.path.isfile(params["image"]):
        module.fail_json(msg="image %s does not exist" % params["image"])
    image_size = os.path.getsize(params["image"])
    try:
        facts = guard(device, params["size_bytes"], image_size, params["serial"], params["model"])
    except GuardError as exc:
        try:
            known = describe(device)
        except GuardError:
            known = {}
        module.fail_json(msg=str(exc), device=known)
    image_sha256 = sha256_of(params["image"])
    if image_sha256 != params["sha256"]:
        module.fail_json(msg="image %s has sha256 %s, its manifest says %s: not written"
                         % (params["image"], image_sha256, params["sha256"]), device=facts)
    before = device_sha256(facts["path"], image_size)
    if before == params["sha256"]:
        module.exit_json(changed=False, action="already-written", written_bytes=0, readback_sha256=before,
                         device=facts)
    if module.check_mode:
        module.exit_json(changed=True, action="would-write", written_bytes=0, readback_sha256=before, device=facts,
                         msg="would write %d bytes of %s (sha256 %s) to %s (%s, %d bytes, serial %s, model %s)"
                         % (image_size, params["image"], params["sha256"], device, facts["path"],
                            facts["size_bytes"], facts["serial"], facts["model"]))
    try:
        write_image(params["image"], facts["path"])
    except OSError as exc:
        module.fail_json(msg="writing %s failed: %s" % (facts["path"], exc), device=facts)
    after = device_sha256(facts["path"], image_size)
    if after != params["sha256"]:
        module.fail_json(msg="read-back of %s: sha256 %s, expected %s: the medium did not keep the image"
                         % (facts["path"], after, params["sha256"]), device=facts, readback_sha256=after)
    module.exit_json(changed=True, action="written", written_bytes=image_size, readback_sha256=after, device=facts)


if __name__ == "__main__":
    main()
