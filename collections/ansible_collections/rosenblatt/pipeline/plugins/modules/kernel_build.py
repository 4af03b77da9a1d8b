#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: patch, configure and build a kernel into a verified, versioned artifact."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_build
short_description: Build a kernel artifact (Image, DTBs with overlays, modules, .config, manifest.json)
description:
  - Hashes every input (source id, patches, config fragments, overlays, targets, toolchain versions). An
    artifact under O(artifact_root) named C(<release>-<hash>) whose manifest verifies means there is
    nothing to do (changed=false).
  - Otherwise applies O(patches) in order to a hard-link copy of O(source_dir), makes O(base_config), merges
    O(fragments) with the kernel's merge_config.sh, runs olddefconfig and checks that every fragment symbol
    kept its value (a dropped symbol fails with its unmet dependencies, read from Kconfig), builds
    O(targets) out of tree with ccache, compiles O(overlays) with C(dtc -@), applies them to each of
    O(base_dtbs) with fdtoverlay, checks the NPU nodes of each result, and writes the artifact with a manifest holding
    the sha256 of every file, under a temporary name renamed at the end.
  - Supports check mode (reports whether a build would run).
options:
  source_dir:
    description: Pristine kernel tree (from M(rosenblatt.pipeline.kernel_source)); never written to.
    type: path
    required: true
  source_id:
    description: Exact identity of the source, part of the input hash.
    type: str
    required: true
  work_root:
    description: Folder for patched trees and build directories.
    type: path
    required: true
  artifact_root:
    description: Folder receiving one artifact directory per input hash.
    type: path
    required: true
  series:
    description: A series file (one patch file name per line, relative to it; C(<file> opt-in) marks a patch
      applied only when named in O(opt_in_patches)). Its patches come before O(patches).
    type: path
  opt_in_patches:
    description: Opt-in patches of O(series) to apply for this host.
    type: list
    elements: str
    default: []
  config_symbols:
    description: Per-host symbols (name without CONFIG_, value y/m/n, a number or a string) written to a
      generated fragment merged after O(fragments) and verified like them.
    type: dict
    default: {}
  patches:
    description: Further patch files applied in this order with patch -p1.
    type: list
    elements: path
    default: []
  fragments:
    description: Config fragments merged in this order onto O(base_config).
    type: list
    elements: path
    default: []
  overlays:
    description: Device-tree overlay sources (.dtso) applied in this order to each of O(base_dtbs).
    type: list
    elements: path
    default: []
  base_dtbs:
    description: The boards' DTBs below arch/<arch>/boot/dts, e.g. rockchip/rk3588-rock-5-itx.dtb; each gets
      O(overlays) applied and, with O(verify_npu), its NPU nodes verified.
    type: list
    elements: str
    required: true
  extra_dtbs:
    description: Further DTBs to build and ship unchanged.
    type: list
    elements: str
    default: []
  targets:
    description: make targets (Image, modules, dtbs, modules_prepare, ...).
    type: list
    elements: str
    required: true
  single_modules:
    description: Single module targets such as drivers/accel/rocket/rocket.ko, for builds without vmlinux.
    type: list
    elements: str
    default: []
  arch:
    description: Kernel ARCH.
    type: str
    default: arm64
  base_config:
    description: Config target the fragments are merged onto.
    type: str
    default: defconfig
  cross_compile:
    description: CROSS_COMPILE prefix; empty for a native build.
    type: str
    default: aarch64-linux-gnu-
  ccache:
    description: Compile through ccache.
    type: bool
    default: true
  ccache_dir:
    description: CCACHE_DIR (empty keeps ccache's default).
    type: path
    default: ""
  jobs:
    description: make -j; 0 uses one job per core of the build host.
    type: int
    default: 0
  verify_npu:
    description: Fail unless each shipped base DTB enables the three NPU cores, their IOMMUs and supplies.
    type: bool
    default: true
  tarball:
    description: Also pack the artifact as C(<artifact>.tar), e.g. to fetch it from a build-host board.
    type: bool
    default: false
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Build the kernel artifact
  rosenblatt.pipeline.kernel_build:
    source_dir: "{{ kernel_source_path }}"
    source_id: "{{ kernel_source_id }}"
    work_root: "{{ cache }}/kernel/work"
    artifact_root: "{{ cache }}/artifacts/kernel"
    fragments: ["{{ playbook_dir }}/../kernel/configs/npu.config"]
    overlays: ["{{ playbook_dir }}/../kernel/dts/overlays/npu-enable.dtso"]
    base_dtbs: [rockchip/rk3588-rock-5-itx.dtb]
    targets: [Image, modules, dtbs]
"""

RETURN = r"""
artifact:
  description: The artifact directory (empty in check mode when a build would run).
  type: str
  returned: always
input_hash:
  description: sha256 of every input.
  type: str
  returned: always
action:
  description: present, built or would-build.
  type: str
  returned: always
manifest:
  description: The artifact's manifest.json.
  type: dict
  returned: always
log:
  description: Build log of this run (empty when nothing was built).
  type: str
  returned: always
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_build import (
    BuildError,
    Spec,
    build,
    read_series,
    write_symbols_fragment,
)


def main() -> None:
    paths = {"type": "list", "elements": "path", "default": []}
    module = AnsibleModule(
        argument_spec={
            "source_dir": {"type": "path", "required": True},
            "source_id": {"type": "str", "required": True},
            "work_root": {"type": "path", "required": True},
            "artifact_root": {"type": "path", "required": True},
            "series": {"type": "path"},
            "opt_in_patches": {"type": "list", "elements": "str", "default": []},
            "config_symbols": {"type": "dict", "default": {}},
            "patches": paths, "fragments": paths, "overlays": paths,
            "base_dtbs": {"type": "list", "elements": "str", "required": True},
            "extra_dtbs": {"type": "list", "elements": "str", "default": []},
            "targets": {"type": "list", "elements": "str", "required": True},
            "single_modules": {"type": "list", "elements": "str", "default": []},
            "arch": {"type": "str", "default": "arm64"},
            "base_config": {"type": "str", "default": "defconfig"},
            "cross_compile": {"type": "str", "default": "aarch64-linux-gnu-"},
            "ccache": {"type": "bool", "default": True},
            "ccache_dir": {"type": "path", "default": ""},
            "jobs": {"type": "int", "default": 0},
            "verify_npu": {"type": "bool", "default": True},
            "tarball": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = dict(module.params)
    series, opt_in, symbols = params.pop("series"), params.pop("opt_in_patches"), params.pop("config_symbols")
    # In check mode the generated fragment goes to a scratch folder: the work folder stays untouched.
    scratch = tempfile.mkdtemp(prefix="kernel-build-check-") if module.check_mode else None
    try:
        if series:
            params["patches"] = read_series(series, opt_in) + params["patches"]
        elif opt_in:
            raise BuildError("opt_in_patches %s given without a series" % ", ".join(opt_in))
        if symbols:
            fragments_dir = scratch or os.path.join(params["work_root"], "fragments")
            params["fragments"] = [*params["fragments"], write_symbols_fragment(symbols, fragments_dir)]
        result = build(Spec(**params), check_mode=module.check_mode)
    except (BuildError, OSError) as exc:
        module.fail_json(msg=str(exc))
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    module.exit_json(changed=result.changed, action=result.action, artifact=result.artifact,
                     input_hash=result.input_hash, manifest=result.manifest, log=result.log)


if __name__ == "__main__":
    main()
