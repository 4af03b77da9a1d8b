"""Builds fixture trees with the layout the kernel creates for the rocket driver (Linux 7.2).

Device-tree properties are written as the kernel exposes them under /proc/device-tree: strings
NUL-terminated, string lists NUL-separated, cells as big-endian u32. Paths and names follow
rk3588-base.dtsi, rocket_drv.c and drm_accel.c (see docs/npu-mainline-status.md).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

CORES = (("npu@fdab0000", "iommu@fdab9000"), ("npu@fdac0000", "iommu@fdaca000"), ("npu@fdad0000", "iommu@fdada000"))
ROCKET_CONFIG = "CONFIG_DRM_ACCEL=y\nCONFIG_DRM_ACCEL_ROCKET=m\nCONFIG_ROCKCHIP_IOMMU=y\n"


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, path: str, content: str | bytes, mode: int = 0o644) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)
        return target

    def symlink(self, path: str, target: str) -> None:
        link = self.root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def dt_node(self, path: str, **properties: str | list[str] | int | bool) -> None:
        node = "/proc/device-tree/" + path.strip("/")
        (self.root / node.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for key, value in properties.items():
            if isinstance(value, bool):
                data = b""  # an empty property: present or not
            elif isinstance(value, int):
                data = value.to_bytes(4, "big")
            elif isinstance(value, list):
                data = b"".join(item.encode() + b"\0" for item in value)
            else:
                data = value.encode() + b"\0"
            self.file(node + "/" + key.replace("_", "-"), data)


def kernel(tree: Tree, release: str = "7.2.13-rosenblatt", config: str | None = ROCKET_CONFIG,
           module_file: bool = True) -> None:
    tree.file("/proc/sys/kernel/osrelease", release + "\n")
    tree.file("/proc/modules", "nvme 57344 2 - Live 0x0000000000000000\n")
    if config is not None:
        tree.file("/proc/config.gz", gzip.compress(config.encode()))
    if module_file:
        tree.file(f"/lib/modules/{release}/kernel/drivers/accel/rocket/rocket.ko.zst", b"\x28\xb5\x2f\xfd")


def rk3588_board(tree: Tree, status: str | tuple[str, ...] = "okay", iommu_status: str = "okay", supply: bool = True,
                 iommus: bool = True) -> None:
    """The three cores of rk3588-base.dtsi with their IOMMUs; status per core when a tuple."""
    statuses = status if isinstance(status, tuple) else (status,) * len(CORES)
    tree.dt_node("/", model="Radxa ROCK 5 ITX", compatible=["radxa,rock-5-itx", "rockchip,rk3588"])
    tree.dt_node("/chosen", bootargs="root=/dev/nvme0n1p2 rw")
    for index, (core, iommu) in enumerate(CORES):
        phandle = 0x100 + index
        tree.dt_node(iommu, compatible=["rockchip,rk3588-iommu", "rockchip,rk3568-iommu"],
                     status=iommu_status, phandle=phandle)
        properties: dict[str, str | list[str] | int | bool] = {
            "compatible": ["rockchip,rk3588-rknn-core"], "status": statuses[index]}
        if iommus:
            properties["iommus"] = phandle
        if supply:
            properties.update(npu_supply=0x200, sram_supply=0x200)
        tree.dt_node(core, **properties)


def load_rocket(tree: Tree) -> None:
    tree.file("/proc/modules", "rocket 77824 0 - Live 0x0000000000000000\nnvme 57344 2 - Live 0x0\n")


def bind_cores(tree: Tree, runtime_status: str = "suspended", cores: tuple[int, ...] = (0, 1, 2),
               iommu: bool = True) -> None:
    """Bind cores (indexes into CORES) to rocket, each attached to its IOMMU (a group each, as rockchip-iommu makes)."""
    for index in cores:
        device = CORES[index][0].split("@")[1] + ".npu"
        tree.file(f"/sys/devices/platform/{device}/power/runtime_status", runtime_status + "\n")
        tree.symlink(f"/sys/bus/platform/devices/{device}", f"../../../devices/platform/{device}")
        tree.symlink(f"/sys/bus/platform/drivers/rocket/{device}", f"../../../../devices/platform/{device}")
        if iommu:
            tree.file(f"/sys/kernel/iommu_groups/{index + 5}/type", "DMA\n")
            tree.symlink(f"/sys/devices/platform/{device}/iommu_group", f"../../../kernel/iommu_groups/{index + 5}")


def accel_node(tree: Tree) -> None:
    # The accel device belongs to the "rknn" facade platform device that rocket registers at init.
    tree.file("/dev/accel/accel0", b"")
    tree.file("/sys/devices/platform/rknn/accel/accel0/dev", "261:0\n")
    tree.symlink("/sys/class/accel/accel0", "../../devices/platform/rknn/accel/accel0")
    tree.symlink("/sys/devices/platform/rknn/accel/accel0/device", "../../../rknn")


def recorded_rocket_version(path: str) -> dict[str, str]:
    """DRM_IOCTL_VERSION as the 7.2 rocket driver answers it (rocket_drv.c: name, desc; version unset)."""
    return {"name": "rocket", "version": "0.0.0", "date": "", "desc": "rocket DRM"}
