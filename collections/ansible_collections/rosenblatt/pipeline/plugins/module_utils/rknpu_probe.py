# Copyright: rosenblatt developers
# MIT License
"""State of the RK3588 NPU under the mainline `rocket` DRM-accel driver.

Facts come from the places the 7.2 driver creates (see docs/npu-mainline-status.md):
device-tree nodes `rockchip,rk3588-rknn-core`, module `rocket`, `/dev/accel/accel*`
answering DRM_IOCTL_VERSION with name "rocket", and per-core platform devices bound
to driver `rocket`, each attached to its IOMMU (an `iommu_group` link). The verdict is the first
failing step of that chain; `ready` needs every core the device tree enables to pass every step.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import subprocess
from collections.abc import Callable
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boards import SOCS
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.sysroot import (
    SysRoot,
    kernel_release,
    read_kernel_config,
)

# The one SoC with an NPU we support (module_utils/boards.py).
NPU_COMPATIBLE = SOCS["rk3588"]["npu"]["compatible"]
DT_BASE = "/proc/device-tree"
DRIVER_NAME = "rocket"
DRIVER_SYSFS = "/sys/bus/platform/drivers/rocket"
KMSG_PATTERN = re.compile(r"rocket|rknn|\bnpu\b", re.IGNORECASE)
KMSG_MAX_LINES = 40

# Verdicts from worst to best, the order the chain is checked in; each says what to do about it. The
# rollout's "at least as good as before" compares positions in this list (verdict_rank) and the number of
# working cores, so a partial NPU never counts as ready and never as good as a whole one.
VERDICTS: dict[str, str] = {
    "no-npu-in-dt": "The live device tree has no rockchip,rk3588-rknn-core node: this is not an RK3588 "
                    "or its firmware passed a device tree without the NPU. Boot a kernel DTB for the board.",
    "dt-disabled": "NPU core nodes exist but not all are status=okay: apply the NPU-enable overlay "
                   "(kernel/dts/overlays) and make sure the boot chain passes the DTB to the kernel.",
    "iommu-disabled": "NPU cores are enabled but the IOMMU each one names (iommus) is disabled or missing: "
                      "rocket cannot map memory without it; enable rknn_mmu_0..2 (the NPU-enable overlay does).",
    "dt-missing-supply": "NPU cores are enabled but have no npu-supply: the power domain regulator "
                         "(vdd_npu_s0) is not wired; use the NPU-enable overlay.",
    "driver-not-built": "The running kernel has no rocket driver (CONFIG_DRM_ACCEL_ROCKET unset): "
                        "install a kernel built by the kernel stage.",
    "driver-not-loaded": "The rocket module is built but not loaded: run 'modprobe rocket' and read dmesg.",
    "cores-not-bound": "rocket is loaded but no NPU core is bound to it: look at the kernel log lines "
                       "in the facts (clocks, resets, regulators, deferred probe).",
    "cores-partly-bound": "rocket is loaded but not every enabled NPU core is bound to it: look at the kernel "
                          "log lines and deferred devices in the facts for the missing cores.",
    "iommu-not-attached": "NPU cores are bound but not every one is attached to its IOMMU (no iommu_group): "
                          "check that rockchip-iommu probed (CONFIG_ROCKCHIP_IOMMU) before rocket.",
    "no-device-node": "NPU cores are bound but /dev/accel/accel* does not exist: check udev and "
                      "that DRM_ACCEL is enabled.",
    "ioctl-failed": "DRM_IOCTL_VERSION on the accel node failed or named another driver: "
                    "see the errno in the facts; check permissions (group render).",
    "selftest-failed": "The device answers but the npu-probe self-test GEMM failed on at least one core.",
    "ready": "Every NPU core the device tree enables is bound to rocket, attached to its IOMMU, and the "
             "accel node answers.",
}
VERDICT_ORDER = tuple(VERDICTS)


def verdict_rank(verdict: str) -> int:
    """Position from worst (0) to best; an unknown verdict ranks below every known one."""
    return VERDICT_ORDER.index(verdict) if verdict in VERDICTS else -1


class DrmVersion(ctypes.Structure):
    """struct drm_version from include/uapi/drm/drm.h (native layout, so it is right on arm64 and x86_64)."""

    _fields_ = [
        ("version_major", ctypes.c_int),
        ("version_minor", ctypes.c_int),
        ("version_patchlevel", ctypes.c_int),
        ("name_len", ctypes.c_size_t),
        ("name", ctypes.c_void_p),
        ("date_len", ctypes.c_size_t),
        ("date", ctypes.c_void_p),
        ("desc_len", ctypes.c_size_t),
        ("desc", ctypes.c_void_p),
    ]


def drm_ioctl_version_number() -> int:
    """DRM_IOCTL_VERSION = _IOWR('d', 0x00, struct drm_version) in the asm-generic ioctl encoding."""
    ioc_read_write = 3
    return (ioc_read_write << 30) | (ctypes.sizeof(DrmVersion) << 16) | (ord("d") << 8) | 0x00


def drm_version(path: str) -> dict[str, Any]:
    """Issue DRM_IOCTL_VERSION on a device node: {name, version, desc} or raises OSError."""
    buffers = [ctypes.create_string_buffer(256) for _ in range(3)]
    request = DrmVersion(0, 0, 0,
                         256, ctypes.addressof(buffers[0]),
                         256, ctypes.addressof(buffers[1]),
                         256, ctypes.addressof(buffers[2]))
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        raw = bytearray(bytes(request))
        fcntl.ioctl(fd, drm_ioctl_version_number(), raw, True)
    finally:
        os.close(fd)
    answer = DrmVersion.from_buffer_copy(bytes(raw))

    def text(index: int, length: int) -> str:
        return buffers[index].raw[:min(length, 256)].decode("utf-8", "replace")

    return {
        "name": text(0, answer.name_len),
        "version": "%d.%d.%d" % (answer.version_major, answer.version_minor, answer.version_patchlevel),
        "date": text(1, answer.date_len),
        "desc": text(2, answer.desc_len),
    }


VersionReader = Callable[[str], dict[str, Any]]


def _dt_nodes(sysroot: SysRoot) -> dict[str, str]:
    """Device-tree node paths (below DT_BASE) by name, two levels deep (RK3588 puts the NPU at the root)."""
    nodes: dict[str, str] = {}
    for name in sysroot.listdir(DT_BASE):
        path = DT_BASE + "/" + name
        if not sysroot.isdir(path):
            continue
        nodes.setdefault(name, path)
        for child in sysroot.listdir(path):
            if sysroot.isdir(path + "/" + child):
                nodes.setdefault(child, path + "/" + child)
    return nodes


def _phandle_of(sysroot: SysRoot, node_path: str) -> int | None:
    raw = sysroot.read_bytes(node_path + "/phandle")
    return int.from_bytes(raw[:4], "big") if raw and len(raw) >= 4 else None


def _node_status(sysroot: SysRoot, node_path: str) -> str:
    # A node without a status property is enabled (devicetree specification, 2.3.4).
    return sysroot.read_dt_string(node_path + "/status") or "okay"


def probe_device_tree(sysroot: SysRoot) -> dict[str, Any]:
    nodes = _dt_nodes(sysroot)
    by_phandle = {}
    for path in nodes.values():
        handle = _phandle_of(sysroot, path)
        if handle is not None:
            by_phandle[handle] = path
    cores = []
    for name, path in sorted(nodes.items()):
        if NPU_COMPATIBLE not in sysroot.read_dt_strings(path + "/compatible"):
            continue
        iommu = None
        raw = sysroot.read_bytes(path + "/iommus")
        if raw and len(raw) >= 4:
            iommu_path = by_phandle.get(int.from_bytes(raw[:4], "big"))
            if iommu_path:
                iommu = {"node": os.path.basename(iommu_path), "status": _node_status(sysroot, iommu_path)}
        cores.append({
            "node": name,
            "status": _node_status(sysroot, path),
            "npu_supply": sysroot.exists(path + "/npu-supply"),
            "sram_supply": sysroot.exists(path + "/sram-supply"),
            "iommu": iommu,
        })
    return {
        "available": sysroot.isdir(DT_BASE),
        "model": sysroot.read_dt_string(DT_BASE + "/model"),
        "compatible": sysroot.read_dt_strings(DT_BASE + "/compatible"),
        "cores": cores,
    }


def probe_module(sysroot: SysRoot, release: str | None, config: dict[str, str] | None) -> dict[str, Any]:
    loaded = any(line.split(" ", 1)[0] == DRIVER_NAME
                 for line in (sysroot.read_text("/proc/modules") or "").splitlines())
    builtin = False
    module_file = None
    if release:
        for prefix in ("/lib/modules/", "/usr/lib/modules/"):
            base = prefix + release
            builtin = builtin or ("/rocket.ko" in (sysroot.read_text(base + "/modules.builtin") or ""))
            module_dir = base + "/kernel/drivers/accel/rocket"
            found = sysroot.glob_first(module_dir, r"rocket\.ko(\.(xz|zst|gz))?")
            module_file = module_file or found
    setting = (config or {}).get("CONFIG_DRM_ACCEL_ROCKET")
    if setting == "y":
        builtin = True
    if loaded:
        state = "loaded"
    elif builtin:
        state = "builtin"
    elif module_file or setting == "m":
        state = "available"
    else:
        state = "absent"
    return {"state": state, "file": module_file}


def probe_accel_nodes(sysroot: SysRoot, read_version: VersionReader) -> list[dict[str, Any]]:
    nodes = []
    for name in sysroot.listdir("/dev/accel"):
        if not re.fullmatch(r"accel\d+", name):
            continue
        dev_path = "/dev/accel/" + name
        entry: dict[str, Any] = {
            "path": dev_path,
            "char_device": sysroot.is_char_device(dev_path),
            "parent": sysroot.readlink_name("/sys/class/accel/" + name + "/device"),
        }
        try:
            entry.update(read_version(sysroot.path(dev_path)))
            entry["error"] = None
        except OSError as exc:
            entry["error"] = "%s: %s" % (errno.errorcode.get(exc.errno or 0, "EUNKNOWN"), exc.strerror)
        nodes.append(entry)
    return nodes


def platform_device_name(node: str) -> str:
    """The platform device the kernel makes of a DT node: npu@fdab0000 becomes fdab0000.npu (of_device_make_bus_id)."""
    name, _, unit = node.partition("@")
    return "%s.%s" % (unit, name) if unit else name


def probe_bound_cores(sysroot: SysRoot) -> list[dict[str, Any]]:
    cores = []
    for name in sysroot.listdir(DRIVER_SYSFS):
        if not name.endswith(".npu"):
            continue
        device = "/sys/bus/platform/devices/" + name
        status = sysroot.read_text(device + "/power/runtime_status")
        cores.append({"device": name, "runtime_status": status.strip() if status else None,
                      # A device the IOMMU core attached has an iommu_group link (drivers/iommu/iommu.c).
                      "iommu_group": sysroot.readlink_name(device + "/iommu_group")})
    return cores


def deferred_npu_devices(sysroot: SysRoot) -> list[str]:
    text = sysroot.read_text("/sys/kernel/debug/devices_deferred") or ""
    return [line.strip() for line in text.splitlines() if ".npu" in line or "rknn" in line]


def npu_clock_rate(sysroot: SysRoot) -> int | None:
    """The SCMI NPU clock from debugfs (root only; mainline assigns 200 MHz in rk3588-base.dtsi)."""
    for name in sysroot.listdir("/sys/kernel/debug/clk"):
        if name.lower() in ("clk_npu", "scmi_clk_npu", "npu"):
            text = sysroot.read_text("/sys/kernel/debug/clk/" + name + "/clk_rate")
            if text and text.strip().isdigit():
                return int(text.strip())
    return None


def kernel_log_lines(sysroot: SysRoot) -> list[str]:
    """The driver's recent /dev/kmsg records ("prio,seq,usec,flags;text"), read without blocking."""
    try:
        fd = os.open(sysroot.path("/dev/kmsg"), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a record was overwritten while reading: go on
                    continue
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    lines = []
    for record in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if record.startswith(" ") or ";" not in record:
            continue  # continuation lines carry key=value device info
        text = record.split(";", 1)[1]
        if KMSG_PATTERN.search(text):
            lines.append(text)
    return lines[-KMSG_MAX_LINES:]


def run_selftest(sysroot: SysRoot, npu_probe_path: str | None) -> dict[str, Any] | None:
    """Run the npu-probe self-test when installed (userspace/npu-probe); None when absent."""
    if not npu_probe_path or not os.access(sysroot.path(npu_probe_path), os.X_OK):
        return None
    try:
        result = subprocess.run([sysroot.path(npu_probe_path), "--json"], capture_output=True,
                                text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "error": str(exc)}
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return {"ok": False, "error": "npu-probe printed no JSON (exit %d): %s" % (result.returncode,
                                                                                   result.stderr.strip()[-400:])}
    report["ok"] = result.returncode == 0 and bool(report.get("ok", False))
    return report


def core_functional(selftest: dict[str, Any] | None, index: int) -> bool | None:
    """Whether npu-probe's self-test GEMM passed on core `index`; None when npu-probe did not run.

    npu-probe numbers cores by its lanes (one accel fd each, jobs submitted together so the driver
    places them on different cores); bound cores are listed in address order. Both are 0..2 on
    RK3588; docs/hardware-validation.md says how to confirm the mapping on a board.
    """
    if selftest is None:
        return None
    for entry in selftest.get("cores") or []:
        if isinstance(entry, dict) and entry.get("core") == index:
            return entry.get("functional") is True
    return False  # no result for this core: npu-probe failed before testing it


def _names(devices: list[str]) -> str:
    return ", ".join(devices)


def decide_verdict(facts: dict[str, Any]) -> tuple[str, str]:
    """The first failing step of the chain, with what exactly failed (cores named) for the message."""
    cores = facts["device_tree"]["cores"]
    if not cores:
        return "no-npu-in-dt", ""
    disabled = [core["node"] for core in cores if core["status"] != "okay"]
    if disabled:
        return "dt-disabled", "not okay: " + _names(disabled)
    no_iommu = [core["node"] for core in cores if not core["iommu"] or core["iommu"]["status"] != "okay"]
    if no_iommu:
        return "iommu-disabled", "IOMMU disabled or missing for " + _names(no_iommu)
    no_supply = [core["node"] for core in cores if not core["npu_supply"]]
    if no_supply:
        return "dt-missing-supply", "no npu-supply: " + _names(no_supply)
    state = facts["module"]["state"]
    if state == "absent" or facts["kernel_config"].get("CONFIG_DRM_ACCEL_ROCKET") == "n":
        return "driver-not-built", ""
    if state == "available":
        return "driver-not-loaded", ""
    expected = [platform_device_name(core["node"]) for core in cores]
    bound = {core["device"]: core for core in facts["bound_cores"]}
    unbound = [device for device in expected if device not in bound]
    if len(unbound) == len(expected):
        return "cores-not-bound", "not bound: " + _names(unbound)
    if unbound:
        return "cores-partly-bound", "%d of %d bound; not bound: %s" % (
            len(expected) - len(unbound), len(expected), _names(unbound))
    detached = [device for device in expected if not bound[device]["iommu_group"]]
    if detached:
        return "iommu-not-attached", "no iommu_group: " + _names(detached)
    if not facts["accel_nodes"]:
        return "no-device-node", ""
    if not any(node.get("name") == DRIVER_NAME and not node["error"] for node in facts["accel_nodes"]):
        errors = [node["path"] + ": " + (node["error"] or "driver " + str(node.get("name")))
                  for node in facts["accel_nodes"]]
        return "ioctl-failed", "; ".join(errors)
    if facts["selftest"] is not None:
        # Every bound core must pass: npu-probe's overall ok alone would hide a core it never reached.
        failed = [core["device"] for core in facts["bound_cores"] if core.get("functional") is not True]
        if failed or not facts["selftest"]["ok"]:
            return "selftest-failed", "failed: " + (_names(failed) or "npu-probe")
    return "ready", "%d of %d cores" % (len(expected), len(expected))


def working_cores(facts: dict[str, Any]) -> int:
    """Enabled cores that are bound, attached to their IOMMU and, where npu-probe ran, pass its GEMM."""
    enabled = {platform_device_name(core["node"]) for core in facts["device_tree"]["cores"] if core["status"] == "okay"}
    answering = any(node.get("name") == DRIVER_NAME and not node["error"] for node in facts["accel_nodes"])
    return sum(1 for core in facts["bound_cores"]
               if core["device"] in enabled and core["iommu_group"] and answering
               and core.get("functional") is not False)


def probe(root: str = "/", read_version: VersionReader = drm_version,
          npu_probe_path: str | None = None) -> dict[str, Any]:
    """All NPU facts plus the verdict; never raises for a machine that simply has no NPU."""
    sysroot = SysRoot(root)
    release = kernel_release(sysroot)
    config, config_source = read_kernel_config(sysroot, release)
    facts: dict[str, Any] = {
        "kernel_release": release,
        "kernel_config_source": config_source,
        "kernel_config": {key: (config or {}).get(key) for key in
                          ("CONFIG_DRM_ACCEL", "CONFIG_DRM_ACCEL_ROCKET", "CONFIG_ROCKCHIP_IOMMU")},
        "device_tree": probe_device_tree(sysroot),
        "module": probe_module(sysroot, release, config),
        "accel_nodes": probe_accel_nodes(sysroot, read_version),
        "bound_cores": probe_bound_cores(sysroot),
        "deferred_devices": deferred_npu_devices(sysroot),
        "clock_rate_hz": npu_clock_rate(sysroot),
        "kernel_log": kernel_log_lines(sysroot),
    }
    facts["selftest"] = run_selftest(sysroot, npu_probe_path) if facts["accel_nodes"] else None
    for index, core in enumerate(facts["bound_cores"]):
        core["functional"] = core_functional(facts["selftest"], index)
    verdict, detail = decide_verdict(facts)
    facts.update(verdict=verdict, verdict_rank=verdict_rank(verdict), verdict_order=list(VERDICT_ORDER),
                 verdict_detail=detail,
                 enabled_cores=sum(1 for core in facts["device_tree"]["cores"] if core["status"] == "okay"),
                 working_cores=working_cores(facts),
                 message=VERDICTS[verdict] + (" (%s)" % detail if detail else ""))
    return facts
