#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: GPT disk image (EFI system, boot, root partitions) from a root file system tree."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: disk_image
short_description: Assemble a GPT disk image from a root file system tree, without loop devices
description:
  - Lays out a GPT disk with an EFI system partition (FAT32, mounted at /boot/efi), a boot partition
    (ext4 without the features GRUB 2.06 and U-Boot cannot read, mounted at /boot, flagged legacy-BIOS
    bootable for U-Boot's distro boot) and a root partition (ext4, GPT type Linux ARM64 root).
  - Each file system is created directly at its offset inside the image file, populated from O(rootfs)
    (whose /boot/efi and /boot go to their own partitions). The tree is consumed.
  - Writes O(dest) through C(<dest>.partial), renamed when complete. Check mode reports the layout only.
options:
  rootfs:
    description: Root file system tree (consumed).
    type: path
    required: true
  dest:
    description: Image file to write.
    type: path
    required: true
  first_mib:
    description: Start of the first partition; the space before it is left for boot firmware written raw.
    type: int
    default: 16
  esp_mib:
    description: Size of the EFI system partition.
    type: int
    default: 64
  boot_mib:
    description: Size of the boot partition.
    type: int
    default: 512
  root_mib:
    description: Size of the root partition.
    type: int
    default: 2048
  disk_guid:
    description: GPT disk GUID.
    type: str
    required: true
  partuuids:
    description: Partition GUIDs, keys C(EFI), C(boot), C(root).
    type: dict
    required: true
  fs_ids:
    description: File system ids, C(EFI) (FAT volume id, 8 hex digits), C(boot) and C(root) (ext4 UUIDs).
    type: dict
    required: true
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Assemble the image
  rosenblatt.pipeline.disk_image:
    rootfs: /var/tmp/build/rootfs
    dest: /var/tmp/build/disk.img
    disk_guid: "{{ 'disk' | ansible.builtin.to_uuid }}"
    partuuids: {EFI: "...", boot: "...", root: "..."}
    fs_ids: {EFI: "1a2b3c4d", boot: "...", root: "..."}
"""

RETURN = r"""
image:
  description: path, size_bytes, sha256, disk_guid and partitions (number, name, type, start_bytes, size_bytes,
    partuuid, mountpoint, fs_id).
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.disk_image import ImageError, assemble, plan_layout


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "rootfs": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "first_mib": {"type": "int", "default": 16},
            "esp_mib": {"type": "int", "default": 64},
            "boot_mib": {"type": "int", "default": 512},
            "root_mib": {"type": "int", "default": 2048},
            "disk_guid": {"type": "str", "required": True},
            "partuuids": {"type": "dict", "required": True},
            "fs_ids": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    for key in ("partuuids", "fs_ids"):
        missing = [name for name in ("EFI", "boot", "root") if not params[key].get(name)]
        if missing:
            module.fail_json(msg="%s lacks %s" % (key, ", ".join(missing)))
    try:
        partitions, size = plan_layout(params["first_mib"], params["esp_mib"], params["boot_mib"],
                                       params["root_mib"], params["partuuids"])
        if module.check_mode:
            module.exit_json(changed=True, image={"path": params["dest"], "size_bytes": size,
                                                  "partitions": [p.as_dict() for p in partitions]})
        image = assemble(params["rootfs"], params["dest"], partitions, size, disk_guid=params["disk_guid"],
                         fs_ids=params["fs_ids"])
    except (ImageError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, image=image)


if __name__ == "__main__":
    main()
