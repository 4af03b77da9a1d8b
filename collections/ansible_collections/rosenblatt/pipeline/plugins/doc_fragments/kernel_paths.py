# Copyright: rosenblatt developers
# MIT License
"""Documentation of the board paths shared by the kernel rollout modules (module_utils.kernel_rollout.PATHS_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  boot_dir:
    description: The boot partition's mount point.
    type: path
    default: /boot
  modules_dir:
    description: Where kernel modules are installed.
    type: path
    default: /lib/modules
"""
