"""Slow tier: the shipped kernel (Image, modules, dtbs) built cold, re-run unchanged, rebuilt after one fragment
changed, and rebuilt from a warm ccache into an empty build folder. Prints wall times and ratios."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.kernel_stage import FULL_BUILD_ROOT, artifact_of, full_build_vars, recap, run_kernel_stage

ARM64_IMAGE_MAGIC = b"ARM\x64"  # arm64 Image header, offset 56 (Documentation/arch/arm64/booting.rst)
HOURS = 3600


def _check_full_artifact(artifact: Path) -> dict:
    manifest = json.loads((artifact / "manifest.json").read_text())
    image = (artifact / "Image").read_bytes()
    assert image[56:60] == ARM64_IMAGE_MAGIC
    assert struct.unpack_from("<Q", image, 16)[0] > len(image) // 2  # image_size covers the file
    release = manifest["release"]
    rocket = artifact / "modules/lib/modules" / release / "kernel/drivers/accel/rocket/rocket.ko"
    assert rocket.is_file()
    assert (artifact / "modules/lib/modules" / release / "modules.dep").is_file()
    assert (artifact / "dtbs/rockchip/rk3588-rock-5-itx.dtb").is_file()
    assert len(list((artifact / "dtbs/rockchip").glob("*.dtb"))) > 50  # the Rockchip dtbs target
    assert {path.parent.name for path in (artifact / "dtbs").rglob("*.dtb")} == {"rockchip"}  # others are off
    assert len(manifest["npu"]["rockchip/rk3588-rock-5-itx.dtb"]["cores"]) == 3
    assert manifest["files"]["Image"]
    return manifest


@pytest.mark.slow
def test_full_build_cold_unchanged_incremental_and_warm_ccache() -> None:
    root = FULL_BUILD_ROOT
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    fragment = root / "npu.config"
    shutil.copyfile(REPO / "kernel/configs/npu.config", fragment)  # the shipped fragment, editable by the test
    variables = {**full_build_vars(root),
                 "kernel_build_fragments": ["rockchip-only.config", "virt-board.config", "rosenblatt.config"],
                 "kernel_build_extra_fragments": [str(fragment)]}
    times = {}

    cold, times["cold"] = run_kernel_stage(variables, timeout=6 * HOURS)
    assert cold.returncode == 0, cold.stdout[-4000:]
    first = artifact_of(cold.stdout)
    manifest = _check_full_artifact(first)
    print("\ncold build: %.0f s (module build_seconds %.0f), release %s" % (times["cold"], manifest["build_seconds"],
                                                                         manifest["release"]))

    unchanged, times["unchanged"] = run_kernel_stage(variables, timeout=HOURS)
    assert unchanged.returncode == 0, unchanged.stdout[-4000:]
    assert recap(unchanged)["changed"] == 0
    assert artifact_of(unchanged.stdout) == first

    fragment.write_text(fragment.read_text() + "# touched by the slow test: one more module\n"
                        "CONFIG_USB_SERIAL_CH341=m\n")
    incremental, times["incremental"] = run_kernel_stage(variables, timeout=6 * HOURS)
    assert incremental.returncode == 0, incremental.stdout[-4000:]
    second = artifact_of(incremental.stdout)
    assert second != first
    release = _check_full_artifact(second)["release"]
    assert (second / "modules/lib/modules" / release / "kernel/drivers/usb/serial/ch341.ko").is_file()

    # Same inputs as the first build, empty build folder and no artifact: only ccache is warm.
    fragment.write_text((REPO / "kernel/configs/npu.config").read_text())
    shutil.rmtree(root / "work" / "build")
    shutil.rmtree(first)
    warm, times["warm_ccache"] = run_kernel_stage(variables, timeout=6 * HOURS)
    assert warm.returncode == 0, warm.stdout[-4000:]
    assert artifact_of(warm.stdout) == first
    _check_full_artifact(first)

    print("wall times: cold %.0f s, unchanged re-run %.1f s, incremental (one fragment) %.0f s, "
          "warm ccache, empty build dir %.0f s" % (times["cold"], times["unchanged"], times["incremental"],
                                                   times["warm_ccache"]))
    print("ratios to cold: unchanged %.4f, incremental %.3f, warm ccache %.3f" % (
        times["unchanged"] / times["cold"], times["incremental"] / times["cold"], times["warm_ccache"] / times["cold"]))
