"""Every verdict of rknpu_facts, each from a tree laid out as the 7.2 kernel lays it out."""

from __future__ import annotations

import ctypes
import errno
import gzip
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import rknpu_probe
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import VERDICTS, drm_version, probe

from .sysroot_tree import Tree, accel_node, bind_cores, kernel, load_rocket, recorded_rocket_version, rk3588_board


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def ready_board(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    bind_cores(tree)
    accel_node(tree)


def test_machine_without_device_tree_has_no_npu(tree: Tree) -> None:
    kernel(tree, config=None, module_file=False)
    facts = probe(str(tree.root))
    assert facts["verdict"] == "no-npu-in-dt"
    assert facts["device_tree"]["available"] is False
    assert facts["message"] == VERDICTS["no-npu-in-dt"]


def test_arm_board_without_rknn_nodes_has_no_npu(tree: Tree) -> None:
    kernel(tree)
    tree.dt_node("/", model="QEMU arm64 virt", compatible=["linux,dummy-virt"])
    tree.dt_node("/pl011@9000000", compatible=["arm,pl011", "arm,primecell"])
    facts = probe(str(tree.root))
    assert facts["verdict"] == "no-npu-in-dt"
    assert facts["device_tree"]["model"] == "QEMU arm64 virt"


def test_disabled_cores_as_on_boltzmann_today(tree: Tree) -> None:
    kernel(tree, release="7.0.0-rc3-ARCH+")
    rk3588_board(tree, status="disabled", iommu_status="disabled")
    facts = probe(str(tree.root))
    assert facts["verdict"] == "dt-disabled"
    assert [core["node"] for core in facts["device_tree"]["cores"]] == ["npu@fdab0000", "npu@fdac0000", "npu@fdad0000"]
    assert {core["status"] for core in facts["device_tree"]["cores"]} == {"disabled"}
    assert facts["device_tree"]["cores"][0]["iommu"] == {"node": "iommu@fdab9000", "status": "disabled"}


def test_enabled_cores_with_disabled_iommu(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree, iommu_status="disabled")
    facts = probe(str(tree.root))
    assert facts["verdict"] == "iommu-disabled"
    assert "npu@fdab0000, npu@fdac0000, npu@fdad0000" in facts["message"]


def test_enabled_cores_that_name_no_iommu(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree, iommus=False)
    assert probe(str(tree.root))["verdict"] == "iommu-disabled"


def test_one_core_disabled_names_it(tree: Tree) -> None:
    ready_board(tree)
    rk3588_board(tree, status=("okay", "disabled", "okay"))
    facts = probe(str(tree.root), read_version=recorded_rocket_version)
    assert facts["verdict"] == "dt-disabled"
    assert facts["verdict_detail"] == "not okay: npu@fdac0000"
    assert facts["enabled_cores"] == 2


def test_fewer_cores_bound_than_enabled_is_not_ready(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    bind_cores(tree, cores=(0, 2))
    accel_node(tree)
    facts = probe(str(tree.root), read_version=recorded_rocket_version)
    assert facts["verdict"] == "cores-partly-bound"
    assert facts["verdict_detail"] == "2 of 3 bound; not bound: fdac0000.npu"
    assert "fdac0000.npu" in facts["message"]
    assert facts["working_cores"] == 2
    assert facts["verdict_rank"] < rknpu_probe.verdict_rank("ready")


def test_bound_core_without_iommu_group(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    bind_cores(tree, cores=(0, 1))
    bind_cores(tree, cores=(2,), iommu=False)
    accel_node(tree)
    facts = probe(str(tree.root), read_version=recorded_rocket_version)
    assert facts["verdict"] == "iommu-not-attached"
    assert facts["verdict_detail"] == "no iommu_group: fdad0000.npu"
    assert facts["working_cores"] == 2


def test_core_without_status_property_is_enabled(tree: Tree) -> None:
    ready_board(tree)
    (tree.root / "proc/device-tree/npu@fdab0000/status").unlink()
    facts = probe(str(tree.root), read_version=recorded_rocket_version)
    assert facts["device_tree"]["cores"][0]["status"] == "okay"
    assert facts["verdict"] == "ready"


def test_enabled_cores_without_supply(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree, supply=False)
    facts = probe(str(tree.root))
    assert facts["verdict"] == "dt-missing-supply"
    assert not any(core["npu_supply"] for core in facts["device_tree"]["cores"])


def test_kernel_without_rocket(tree: Tree) -> None:
    kernel(tree, config="CONFIG_DRM_ACCEL=y\n# CONFIG_DRM_ACCEL_ROCKET is not set\n", module_file=False)
    rk3588_board(tree)
    facts = probe(str(tree.root))
    assert facts["verdict"] == "driver-not-built"
    assert facts["kernel_config"]["CONFIG_DRM_ACCEL_ROCKET"] == "n"
    assert facts["kernel_config_source"] == "/proc/config.gz"


def test_kernel_config_from_boot_when_proc_config_is_absent(tree: Tree) -> None:
    kernel(tree, config=None, module_file=False)
    tree.file("/boot/config-7.2.13-rosenblatt", "CONFIG_DRM_ACCEL=y\nCONFIG_DRM_ACCEL_ROCKET=m\n")
    rk3588_board(tree)
    facts = probe(str(tree.root))
    assert facts["kernel_config_source"] == "/boot/config-7.2.13-rosenblatt"
    assert facts["verdict"] == "driver-not-loaded"


def test_module_built_but_not_loaded(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    facts = probe(str(tree.root))
    assert facts["verdict"] == "driver-not-loaded"
    assert facts["module"]["state"] == "available"
    assert facts["module"]["file"].endswith("/rocket.ko.zst")


def test_loaded_but_no_core_bound_shows_the_drivers_log(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    tree.file("/dev/kmsg", "6,812,2100000,-;usb 1-1: new high-speed USB device\n"
                           "3,901,3400123,-;rocket fdab0000.npu: failed to get clocks for core 0\n"
                           " SUBSYSTEM=platform\n"
                           "4,902,3400200,-;platform fdac0000.npu: deferred probe pending\n")
    tree.file("/sys/kernel/debug/devices_deferred", "fdac0000.npu\tplatform: supplier not ready\n")
    facts = probe(str(tree.root))
    assert facts["verdict"] == "cores-not-bound"
    assert facts["kernel_log"] == ["rocket fdab0000.npu: failed to get clocks for core 0",
                                   "platform fdac0000.npu: deferred probe pending"]
    assert facts["deferred_devices"] == ["fdac0000.npu\tplatform: supplier not ready"]


def test_builtin_driver_counts_as_loaded(tree: Tree) -> None:
    kernel(tree, config="CONFIG_DRM_ACCEL=y\nCONFIG_DRM_ACCEL_ROCKET=y\n", module_file=False)
    rk3588_board(tree)
    bind_cores(tree)
    facts = probe(str(tree.root))
    assert facts["module"]["state"] == "builtin"
    assert facts["verdict"] == "no-device-node"


def test_bound_cores_without_accel_node(tree: Tree) -> None:
    kernel(tree)
    rk3588_board(tree)
    load_rocket(tree)
    bind_cores(tree, runtime_status="active")
    facts = probe(str(tree.root))
    assert facts["verdict"] == "no-device-node"
    assert facts["bound_cores"] == [{"device": d, "runtime_status": "active", "iommu_group": group, "functional": None}
                                    for d, group in (("fdab0000.npu", "5"), ("fdac0000.npu", "6"),
                                                     ("fdad0000.npu", "7"))]


def test_ioctl_on_a_node_that_is_not_a_drm_device_fails_with_errno(tree: Tree) -> None:
    ready_board(tree)
    facts = probe(str(tree.root))  # the real ioctl, on a plain file: the kernel answers ENOTTY
    assert facts["verdict"] == "ioctl-failed"
    assert facts["accel_nodes"][0]["error"].startswith("ENOTTY")
    assert facts["accel_nodes"][0]["parent"] == "rknn"
    assert facts["accel_nodes"][0]["char_device"] is False


def test_accel_node_of_another_driver(tree: Tree) -> None:
    ready_board(tree)
    facts = probe(str(tree.root), read_version=lambda _: {"name": "ivpu", "version": "1.0.0", "desc": "Intel NPU"})
    assert facts["verdict"] == "ioctl-failed"


def test_ready(tree: Tree) -> None:
    ready_board(tree)
    tree.file("/sys/kernel/debug/clk/clk_npu/clk_rate", "200000000\n")
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path="/usr/local/bin/npu-probe")
    assert facts["verdict"] == "ready"
    assert facts["accel_nodes"][0]["name"] == "rocket"
    assert facts["clock_rate_hz"] == 200_000_000
    assert facts["selftest"] is None  # not installed
    assert {core["functional"] for core in facts["bound_cores"]} == {None}


def write_npu_probe(tree: Tree, ok: bool, exit_code: int = 0, cores: int = 1) -> None:
    entries = ", ".join('{"core": %d, "functional": %s}' % (index, str(ok).lower()) for index in range(cores))
    report = '{"ok": %s, "cores": [%s]}' % (str(ok).lower(), entries)
    tree.file("/usr/local/bin/npu-probe", f"#!/bin/sh\necho '{report}'\nexit {exit_code}\n", mode=0o755)


def test_failed_selftest(tree: Tree) -> None:
    ready_board(tree)
    write_npu_probe(tree, ok=False, exit_code=1)
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path="/usr/local/bin/npu-probe")
    assert facts["verdict"] == "selftest-failed"
    assert facts["selftest"]["cores"] == [{"core": 0, "functional": False}]
    assert [core["functional"] for core in facts["bound_cores"]] == [False, False, False]


def test_passed_selftest_on_every_core_is_ready(tree: Tree) -> None:
    ready_board(tree)
    write_npu_probe(tree, ok=True, cores=3)
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path="/usr/local/bin/npu-probe")
    assert facts["verdict"] == "ready"
    assert facts["selftest"]["ok"] is True
    assert facts["working_cores"] == 3


def test_selftest_that_reached_one_core_is_not_ready(tree: Tree) -> None:
    ready_board(tree)
    write_npu_probe(tree, ok=True, cores=1)
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path="/usr/local/bin/npu-probe")
    assert facts["verdict"] == "selftest-failed"
    assert facts["verdict_detail"] == "failed: fdac0000.npu, fdad0000.npu"
    assert [core["functional"] for core in facts["bound_cores"]] == [True, False, False]
    assert facts["working_cores"] == 1


def test_selftest_that_prints_no_json_fails(tree: Tree) -> None:
    ready_board(tree)
    tree.file("/usr/local/bin/npu-probe", "#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n", mode=0o755)
    facts = probe(str(tree.root), read_version=recorded_rocket_version, npu_probe_path="/usr/local/bin/npu-probe")
    assert facts["verdict"] == "selftest-failed"
    assert "exit 139" in facts["selftest"]["error"]


def test_every_verdict_has_a_message_saying_what_to_do() -> None:
    assert all(len(message) > 30 for message in VERDICTS.values())
    assert len(set(VERDICTS.values())) == len(VERDICTS)


def test_every_verdict_is_reached_by_one_fixture(request: pytest.FixtureRequest) -> None:
    """Each verdict of the list comes from some tree above: none is unreachable, each cause has its own."""
    reached = set()
    module = request.module
    for name in dir(module):
        if name.startswith("test_") and name != request.node.name:
            source = getattr(module, name).__code__.co_consts
            reached.update(const for const in source if isinstance(const, str) and const in VERDICTS)
    assert reached == set(VERDICTS)


def test_verdict_rank_orders_partial_below_whole() -> None:
    rank = rknpu_probe.verdict_rank
    assert rank("cores-not-bound") < rank("cores-partly-bound") < rank("iommu-not-attached") < rank("ready")
    assert rank("no-such-verdict") < rank("no-npu-in-dt") == 0


def test_drm_ioctl_version_number_matches_the_kernel_header() -> None:
    # DRM_IOCTL_VERSION = DRM_IOWR(0x00, struct drm_version): 0xc0406400 on 64-bit Linux (drm.h).
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.fail("the project's controllers and boards are 64-bit")
    assert rknpu_probe.drm_ioctl_version_number() == 0xC0406400


def test_drm_version_reports_errno_for_a_missing_node(tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        drm_version(str(tmp_path / "accel0"))
    assert raised.value.errno == errno.ENOENT


def test_corrupt_proc_config_is_not_a_crash(tree: Tree) -> None:
    kernel(tree, config=None)
    tree.file("/proc/config.gz", gzip.compress(b"CONFIG_DRM_ACCEL=y\n")[:10])
    rk3588_board(tree)
    facts = probe(str(tree.root))
    assert facts["kernel_config_source"] is None
    assert facts["verdict"] == "driver-not-loaded"  # the module file is there
