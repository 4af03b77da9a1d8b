"""Kernel stage on real Linux 7.2 source (Debian's linux-source-7.2): config merge and verification,
modules_prepare, rocket.ko, the rock-5-itx DTB with the NPU overlay, idempotence, --check, and each failure
the stage must report clearly. The full Image/modules/dtbs build is the slow tier (test_kernel_full_build)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import fdt
from tests.conftest import REPO, played, rosenblatt_ok
from tests.kernel_stage import CACHE, INVENTORY, artifact_of, isolated_vars, recap, run_kernel_stage

EM_AARCH64 = 183
CLOCK_PATCH = "0001-accel-rocket-Set-the-NPU-clock-rate-on-runtime-resum.patch"
# One persistent work folder per checkout: two checkouts testing at once never share a build folder.
STAGE_ROOT = CACHE / "tests" / ("kernel-stage-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8])


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernel-artifacts")


def stage_vars(artifacts: Path, **extra: object) -> dict:
    """Patched trees, build folders and ccache persist in the cache (as on a controller: a second run makes
    only what changed); artifacts are new for every test run, so each run stages and verifies one."""
    root = STAGE_ROOT
    variables = {**isolated_vars(root), "kernel_build_artifact_root": str(artifacts),
                 "kernel_build_controller_artifact_root": str(artifacts)}
    variables.update(extra)
    return variables


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", "%s is not an ELF file" % path
    return int.from_bytes(header[18:20], "little")


def modinfo(path: Path) -> dict[str, list[str]]:
    """The .modinfo strings of a module (key=value, NUL-separated), read from the file itself."""
    fields: dict[str, list[str]] = {}
    data = path.read_bytes()
    for key in (b"vermagic", b"parm", b"name", b"depends"):
        for chunk in data.split(b"\0"):
            if chunk.startswith(key + b"="):
                fields.setdefault(key.decode(), []).append(chunk[len(key) + 1:].decode())
    return fields


def fdtget(dtb: Path, node: str, prop: str) -> str:
    return subprocess.run(["fdtget", str(dtb), node, prop], capture_output=True, text=True, check=True).stdout.strip()


def test_stage_builds_a_verified_artifact_and_an_unchanged_rerun_is_a_no_op(artifacts: Path, tmp_path: Path) -> None:
    variables = stage_vars(artifacts)
    first, cold_seconds = run_kernel_stage(variables)
    assert first.returncode == 0, first.stdout[-4000:]
    artifact = artifact_of(first.stdout)
    manifest = json.loads((artifact / "manifest.json").read_text())
    release = manifest["release"]
    assert release == "7.2.13-rosenblatt"
    assert manifest["source"].startswith("debian:linux-source-7.2=7.2.13-1 sha256:")

    # Every fragment symbol survived (the stage checked it); spot-check the NPU stack in the shipped .config.
    config = (artifact / "config").read_text().splitlines()
    for line in ("CONFIG_DRM_ACCEL=y", "CONFIG_DRM_ACCEL_ROCKET=m", "CONFIG_ROCKCHIP_IOMMU=y",
                 "CONFIG_PCI_HOST_GENERIC=y", "# CONFIG_ARCH_QCOM is not set"):
        assert line in config
    assert manifest["patches"] == []  # the NPU clock patch is opt-in

    rocket = artifact / "modules/lib/modules" / release / "kernel/drivers/accel/rocket/rocket.ko"
    assert elf_machine(rocket) == EM_AARCH64
    [vermagic] = modinfo(rocket)["vermagic"]
    assert vermagic.split()[0] == release
    assert "aarch64" in vermagic.split()

    shipped = artifact / "dtbs/rockchip/rk3588-rock-5-itx.dtb"
    report = fdt.verify_npu(str(shipped))
    assert [core["path"] for core in report["cores"]] == ["/npu@fdab0000", "/npu@fdac0000", "/npu@fdad0000"]
    for core in report["cores"]:  # cross-checked with dtc's own fdtget
        assert fdtget(shipped, core["path"], "status") == "okay"
        assert fdtget(shipped, core["iommu"], "status") == "okay"
        assert core["npu_supply"] == "vdd_npu_s0"
    assert (artifact / "dtbs/overlays/npu-enable.dtbo").is_file()
    # The check refuses the same DTB with one core switched off by dtc's own fdtput.
    disabled = tmp_path / "one-core-off.dtb"
    shutil.copyfile(shipped, disabled)
    subprocess.run(["fdtput", "-t", "s", str(disabled), "/npu@fdac0000", "status", "disabled"], check=True)
    with pytest.raises(fdt.FdtError, match="does not enable the NPU: /npu@fdac0000: status is 'disabled'"):
        fdt.verify_npu(str(disabled))
    for relative, digest in manifest["files"].items():
        assert subprocess.run(["sha256sum", str(artifact / relative)], capture_output=True, text=True,
                              check=True).stdout.split()[0] == digest

    # The unchanged re-run as `rosenblatt kernel build` runs it: same playbook, through ansible-runner.
    started = time.monotonic()
    outcome = rosenblatt_ok("-i", INVENTORY, "-e", json.dumps(variables), "kernel", "build",
                            env={"ROSENBLATT_CACHE": str(CACHE)})
    warm_seconds = time.monotonic() - started
    assert outcome["runs"][0]["hosts"]["rock5itx"]["changed"] == 0
    assert artifact_of(played(outcome)) == artifact
    print("\nkernel stage: first run %.1f s, unchanged re-run %.1f s" % (cold_seconds, warm_seconds))
    assert warm_seconds < 30


def test_check_mode_plans_a_build_and_writes_nothing(tmp_path: Path) -> None:
    result, _ = run_kernel_stage(isolated_vars(tmp_path / "fresh"), "--check")
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap(result)["changed"] >= 1
    assert "would-build" in result.stdout
    assert not (tmp_path / "fresh").exists()


def test_opt_in_npu_clock_patch_applies_to_the_real_source_and_sets_the_rate(artifacts: Path) -> None:
    variables = stage_vars(artifacts, kernel_build_opt_in_patches=[CLOCK_PATCH], kernel_build_npu_clock_hz=600000000)
    result, _ = run_kernel_stage(variables)
    assert result.returncode == 0, result.stdout[-4000:]
    artifact = artifact_of(result.stdout)
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert [patch["name"] for patch in manifest["patches"]] == [CLOCK_PATCH]
    assert "CONFIG_DRM_ACCEL_ROCKET_NPU_CLOCK_HZ=600000000" in (artifact / "config").read_text().splitlines()
    rocket = artifact / "modules/lib/modules" / manifest["release"] / "kernel/drivers/accel/rocket/rocket.ko"
    assert any(parm.startswith("npu_clock_hz:") for parm in modinfo(rocket)["parm"])


def test_build_on_a_board_that_is_a_build_host_brings_the_artifact_to_the_controller(artifacts: Path,
                                                                                     tmp_path: Path) -> None:
    # The board builds for itself (here over the local connection, still cross-compiling: the controller is
    # x86): inputs copied to it, the artifact packed there, fetched and unpacked on the controller.
    controller = tmp_path / "controller"
    variables = stage_vars(artifacts, kernel_build_host="rock5itx", kernel_build_cross_compile="aarch64-linux-gnu-",
                           kernel_build_controller_artifact_root=str(controller))
    result, _ = run_kernel_stage(variables)
    assert result.returncode == 0, result.stdout[-4000:]
    fetched = artifact_of(result.stdout)
    assert fetched.parent == controller
    manifest = json.loads((fetched / "manifest.json").read_text())
    for relative, digest in manifest["files"].items():
        assert hashlib.sha256((fetched / relative).read_bytes()).hexdigest() == digest
    assert (STAGE_ROOT / "work/inputs/patches/series").is_file()


def test_unknown_opt_in_patch_is_named(tmp_path: Path) -> None:
    result, _ = run_kernel_stage({**isolated_vars(tmp_path), "kernel_build_opt_in_patches": ["0009-no-such.patch"]})
    assert result.returncode != 0
    assert "0009-no-such.patch" in result.stdout and "not opt-in lines" in result.stdout


def test_missing_cross_compiler_is_reported(tmp_path: Path) -> None:
    variables = {**isolated_vars(tmp_path), "kernel_build_cross_compile": "riscv64-nonexistent-linux-gnu-"}
    result, _ = run_kernel_stage(variables)
    assert result.returncode != 0
    assert "compiler riscv64-nonexistent-linux-gnu-gcc not found" in result.stdout
    assert not (tmp_path / "work").exists()


def test_patch_that_does_not_apply_names_the_patch_and_the_hunk(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    subprocess.run(["cp", "-r", str(REPO / "kernel"), str(inputs)], check=True)
    # rocket_drv.c's hunk #3 (runtime resume): its leading context no longer matches the source (as after an
    # upstream change there).
    bad = (REPO / "kernel/patches" / CLOCK_PATCH).read_text().replace(
        " \t\treturn err;\n \t}\n \n+\t/*", " \t\treturn -EIO;\n \t}\n \n+\t/*")
    assert bad != (REPO / "kernel/patches" / CLOCK_PATCH).read_text()
    (inputs / "patches/0002-broken.patch").write_text(bad)
    (inputs / "patches/series").write_text("0002-broken.patch\n")
    result, _ = run_kernel_stage({**isolated_vars(tmp_path), "kernel_build_inputs_dir": str(inputs)})
    assert result.returncode != 0
    assert "patch 0002-broken.patch does not apply" in result.stdout
    assert "drivers/accel/rocket/rocket_drv.c: hunk #3 FAILED" in result.stdout
    assert "@@ -249,7 +286,37 @@" in result.stdout
    assert not list((tmp_path / "work" / "trees").iterdir())  # no half-patched tree left behind


def test_dropped_and_impossible_symbols_are_listed_with_their_unmet_dependencies(artifacts: Path,
                                                                                   tmp_path: Path) -> None:
    fragment = tmp_path / "impossible.config"
    fragment.write_text("# rocket without its IOMMU, a symbol of another architecture, one that does not exist\n"
                        "# CONFIG_ROCKCHIP_IOMMU is not set\nCONFIG_SENSORS_CORETEMP=m\nCONFIG_ROSENBLATT_NO_SUCH=y\n")
    # Its own work folder: the failed .config does not reach the build folder the other tests reuse.
    variables = stage_vars(artifacts, kernel_build_extra_fragments=[str(fragment)],
                           kernel_build_work_root=str(STAGE_ROOT / "config-check"))
    result, _ = run_kernel_stage(variables)
    assert result.returncode != 0
    output = result.stdout.replace("\n        ", " ")
    assert "3 config symbol(s) from the fragments did not survive olddefconfig" in output
    assert ("CONFIG_DRM_ACCEL_ROCKET (from npu.config): asked m, got not set; "
            "unmet: ROCKCHIP_IOMMU [=n] || COMPILE_TEST [=n] (drivers/accel/rocket/Kconfig)") in output
    assert "CONFIG_SENSORS_CORETEMP (from impossible.config): asked m, got not set; unmet: X86 [=n]" in output
    assert ("CONFIG_ROSENBLATT_NO_SUCH (from impossible.config): asked y, got not set; "
            "not defined by any Kconfig") in output


DISABLE_CORE_1 = """/dts-v1/;
/plugin/;

&rknn_core_1 {
\tstatus = "disabled";
};
"""


def test_overlay_that_does_not_apply_is_named(artifacts: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "missing-label.dtso"
    overlay.write_text("/dts-v1/;\n/plugin/;\n\n&rknn_core_9 {\n\tstatus = \"okay\";\n};\n")
    result, _ = run_kernel_stage(stage_vars(artifacts, kernel_build_targets=["dtbs_prepare"],
                                            kernel_build_single_modules=[],
                                            kernel_build_overlays=["npu-enable.dtso", str(overlay)]))
    assert result.returncode != 0
    assert "overlay missing-label.dtso does not apply to rk3588-rock-5-itx.dtb" in result.stdout


def test_every_board_model_gets_its_own_dtb_overlaid_and_verified(artifacts: Path) -> None:
    """Two models in the fleet, two DTBs from the board catalogue: each with the overlay applied and its NPU
    nodes verified, in one artifact."""
    result, _ = run_kernel_stage(stage_vars(artifacts, kernel_build_targets=["dtbs_prepare"],
                                            kernel_build_single_modules=[],
                                            kernel_build_board_models=["radxa-rock-5-itx-plus", "radxa-rock-5b"]))
    assert result.returncode == 0, result.stdout[-3000:]
    artifact = artifact_of(result.stdout)
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["base_dtbs"] == ["rockchip/rk3588-rock-5-itx.dtb", "rockchip/rk3588-rock-5b.dtb"]
    for dtb in manifest["base_dtbs"]:
        assert manifest["npu"][dtb]["model"].startswith("Radxa ROCK 5")
        assert [core["status"] for core in manifest["npu"][dtb]["cores"]] == ["okay"] * 3
        assert fdtget(artifact / "dtbs" / dtb, "/npu@fdac0000", "status") == "okay"


@pytest.mark.parametrize(("base_dtb", "overlays", "problem"), [
    ("rockchip/rk3588-rock-5-itx.dtb", ["npu-enable.dtso", "disable-core-1"],
     '/npu@fdac0000: status is \'disabled\', not "okay"'),
    ("rockchip/rk3588-armsom-sige7.dtb", [], "/npu@fdab0000: status is 'disabled'"),
    ("rockchip/rk3568-rock-3a.dtb", [], "expected 3 rockchip,rk3588-rknn-core nodes, found 0"),
])
def test_dtb_without_enabled_npu_fails_verification(artifacts: Path, tmp_path: Path, base_dtb: str,
                                                    overlays: list[str], problem: str) -> None:
    (tmp_path / "disable-core-1.dtso").write_text(DISABLE_CORE_1)
    overlays = [str(tmp_path / (name + ".dtso")) if name == "disable-core-1" else name for name in overlays]
    result, _ = run_kernel_stage(stage_vars(artifacts, kernel_build_targets=["dtbs_prepare"],
                                            kernel_build_single_modules=[], kernel_build_base_dtbs=[base_dtb],
                                            kernel_build_overlays=overlays))
    assert result.returncode != 0
    output = result.stdout.replace("\n        ", " ")
    assert "%s does not enable the NPU" % base_dtb in output
    assert problem in output


def test_unknown_tag_is_reported_before_anything_is_written(tmp_path: Path) -> None:
    repository = tmp_path / "linux.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repository)], check=True)
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repository), str(work)], check=True, capture_output=True)
    (work / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "Makefile"], check=True)
    subprocess.run([*git, "commit", "-qm", "v7.2.13"], check=True)
    subprocess.run([*git, "tag", "v7.2.13"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD", "--tags"], check=True, capture_output=True)
    cache = tmp_path / "source-cache"
    result, _ = run_kernel_stage({**isolated_vars(tmp_path), "kernel_source_type": "git",
                                  "kernel_source_cache_dir": str(cache),
                                  "kernel_source_git_url": "file://%s" % repository,
                                  "kernel_source_git_tag": "v7.2.99"})
    assert result.returncode != 0
    assert "unknown tag 'v7.2.99': file://%s has no refs/tags/v7.2.99" % repository in result.stdout
    assert not (cache / "sources").exists()


def test_debian_version_that_the_suite_does_not_have_is_reported(tmp_path: Path) -> None:
    result, _ = run_kernel_stage({**isolated_vars(tmp_path), "kernel_source_debian_version": "7.2.99-1"})
    assert result.returncode != 0
    output = result.stdout.replace("\n        ", " ")
    assert "linux-source-7.2 version 7.2.99-1 is not in http://deb.debian.org/debian sid (available: " in output
    assert not list((CACHE / "kernel/debs").glob("*7.2.99*"))
