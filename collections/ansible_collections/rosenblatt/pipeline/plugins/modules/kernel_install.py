#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: install a staged kernel artifact into versioned paths, without touching what boots now."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_install
short_description: Install a staged kernel into /lib/modules/<release> and /boot/<release> (temp name, then rename)
description:
  - Copies the modules of a staged, verified kernel artifact to C(<modules_dir>/<release>.partial), runs
    depmod, renames it into place; then fills C(<boot_dir>/<release>.partial) with Image, config, dtbs and an
    initramfs made by the board's own tool (mkinitcpio, dracut or initramfs-tools' mkinitramfs; none where
    the board has no tool), and renames it.
  - A folder that carries the marker of this artifact is left as it is; an incomplete or foreign one for a
    release that is not running is replaced. Loader configs are not touched (the boot_config role does that).
  - Supports check mode (says what it would do).
options:
  staging:
    description: The staged artifact folder (verified against its manifest on the board).
    type: path
    required: true
  release:
    description: Kernel release.
    type: str
    required: true
  artifact_sha256:
    description: sha256 of the artifact's manifest.json, written as the completion marker.
    type: str
    required: true
  initramfs_tool:
    description: The board's initramfs tool (board facts); C(none) installs the kernel without an initramfs.
    type: str
    choices: [initramfs-tools, dracut, mkinitcpio, none]
    required: true
extends_documentation_fragment:
  - rosenblatt.pipeline.kernel_paths
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Install the kernel
  rosenblatt.pipeline.kernel_install:
    staging: /var/lib/rosenblatt/staging/7.2.13-rosenblatt-f7e292333492eafa
    release: 7.2.13-rosenblatt-f7e292333492eafa
    artifact_sha256: "{{ artifact.manifest_sha256 }}"
    initramfs_tool: "{{ ansible_facts.board.initramfs_tool }}"
"""

RETURN = r"""
installed:
  description: What was (or in check mode would be) installed, C(modules) and/or C(boot); empty when both were there.
  type: list
  elements: str
  returned: always
initramfs_seconds:
  description: Time the initramfs tool took.
  type: float
  returned: when an initramfs was made
"""

import os
import shutil
import subprocess
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_rollout import (
    INSTALLED_MARKER,
    PATHS_SPEC,
    installed_artifact,
)

BOOT_FILES = ("Image", "config", "source")


def _publish(partial: str, final: str, digest: str) -> None:
    with open(os.path.join(partial, INSTALLED_MARKER), "w", encoding="ascii") as stream:
        stream.write(digest + "\n")
    # Contents on disk before the rename makes them visible: after a power cut the folder is whole or absent.
    # One sync of everything: thousands of per-file fsyncs cost minutes on slow media.
    os.sync()
    if os.path.lexists(final):
        shutil.rmtree(final)
    os.rename(partial, final)
    descriptor = os.open(os.path.dirname(final), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# Each tool's command that writes one initramfs image for a release to a file of ours, never the distribution's
# own images or presets (tests/unit/test_initramfs_tools.py parses them as each tool does).
INITRAMFS_COMMANDS = {"initramfs-tools": ["mkinitramfs", "-o", "{output}", "{release}"],
                      "dracut": ["dracut", "--force", "--kver", "{release}", "{output}"],
                      "mkinitcpio": ["mkinitcpio", "--kernel", "{release}", "--generate", "{output}"]}


def initramfs_command(tool: str, release: str, output: str) -> list[str]:
    return [word.format(release=release, output=output) for word in INITRAMFS_COMMANDS[tool]]


def _make_initramfs(module: AnsibleModule, tool: str, release: str, partial: str, *, boot_dir: str,
                    result: dict[str, Any]) -> None:
    """<partial>/initrd.img by the board's tool, from the modules installed in their final place."""
    # mkinitramfs picks a compression the kernel can unpack from /boot/config-<release>.
    config_link = os.path.join(boot_dir, "config-" + release)
    made_config_link = tool == "initramfs-tools" and not os.path.lexists(config_link)
    if made_config_link:
        shutil.copy2(os.path.join(partial, "config"), config_link)
    started = time.monotonic()
    try:
        command = initramfs_command(tool, release, os.path.join(partial, "initrd.img"))
        made = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        if made_config_link:
            os.unlink(config_link)
    result["initramfs_seconds"] = round(time.monotonic() - started, 1)
    if made.returncode != 0 or not os.path.isfile(os.path.join(partial, "initrd.img")):
        module.fail_json(msg="%s failed (exit %d): %s" % (command[0], made.returncode,
                                                          (made.stderr or made.stdout).strip()[-2000:]), **result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "staging": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "artifact_sha256": {"type": "str", "required": True},
            "initramfs_tool": {"type": "str", "required": True, "choices": [*INITRAMFS_COMMANDS, "none"]},
            **PATHS_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    release, digest = params["release"], params["artifact_sha256"]
    if release == os.uname().release:
        module.fail_json(msg="release %s is the running kernel: it is not reinstalled under itself" % release)
    modules_final = os.path.join(params["modules_dir"], release)
    boot_final = os.path.join(params["boot_dir"], release)
    todo = [name for name, folder in (("modules", modules_final), ("boot", boot_final))
            if installed_artifact(folder) != digest]
    if module.check_mode or not todo:
        module.exit_json(changed=bool(todo), installed=todo)
    result = {"changed": True, "installed": todo}
    staged_modules = os.path.join(params["staging"], "modules", "lib", "modules", release)
    if not os.path.isdir(staged_modules):
        module.fail_json(msg="%s: the staged artifact has no modules for %s" % (params["staging"], release))
    # Modules first: the initramfs tool reads them from their final place.
    if "modules" in todo:
        partial = modules_final + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staged_modules, partial, symlinks=True)
        _publish(partial, modules_final, digest)
        depmod = subprocess.run(["depmod", release], capture_output=True, text=True, check=False)
        if depmod.returncode != 0:
            module.fail_json(msg="depmod %s failed: %s" % (release, depmod.stderr.strip()), **result)
    partial = boot_final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    for name in BOOT_FILES:
        source = os.path.join(params["staging"], name)
        if os.path.isfile(source):
            shutil.copy2(source, os.path.join(partial, name))
    if os.path.isdir(os.path.join(params["staging"], "dtbs")):
        shutil.copytree(os.path.join(params["staging"], "dtbs"), os.path.join(partial, "dtbs"), symlinks=True)
    if params["initramfs_tool"] != "none":
        _make_initramfs(module, params["initramfs_tool"], release, partial, boot_dir=params["boot_dir"], result=result)
    _publish(partial, boot_final, digest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
