# Copyright: rosenblatt developers
# MIT License
"""The board catalogue, keyed by `board_model`: what differs between the boards we build for. The inventory
check, the kernel stage (the DTB each model gets overlaid and verified), board_image (console, DTB, drivers
for the initramfs), the NPU probe and the rollout read it. Adding a board is one entry here; adding a SoC is
one entry in SOCS.

A board: soc, dtb (below arch/arm64/boot/dts; empty: the firmware's own device tree), console (the serial
console for console=), watchdog_module, initramfs_modules (what reaches the root file system on its media),
source (where the values come from). A SoC: npu (compatible string, cores with their unit address and IOMMU
unit address), big_cores (the CPUs inference is pinned to) and soc_source; a SoC without an NPU has npu None.
docs/boards.md's tables are generated from here (tools/doc_tables.py).
"""

from __future__ import annotations

from typing import Any

SOCS: dict[str, dict[str, Any]] = {
    "rk3588": {
        "npu": {"compatible": "rockchip,rk3588-rknn-core",
                "cores": [{"unit": "fdab0000", "iommu": "fdab9000"},
                          {"unit": "fdac0000", "iommu": "fdaca000"},
                          {"unit": "fdad0000", "iommu": "fdada000"}]},
        "big_cores": "4-7",
        "soc_source": "Linux 7.2 arch/arm64/boot/dts/rockchip/rk3588-base.dtsi (rknn_core_0..2, rknn_mmu_0..2; "
                      "cpu_b0..cpu_b3, CPUs 4-7, the Cortex-A76 cluster); drivers/accel/rocket",
    },
    "qemu-virt": {"npu": None, "big_cores": "0-1", "soc_source": "the virtual board's two vCPUs (virtual_board)"},
    "none": {"npu": None, "big_cores": "", "soc_source": "stand-in hosts: nothing is pinned"},
}

# The RK3588 boards' storage and PCIe drivers (NVMe over the SoC's PCIe 3 controller and its combo PHY, eMMC,
# SD), as modules of a distribution-style kernel config.
_RK3588_ROOT_DRIVERS = ["nvme", "mmc_block", "sdhci_of_dwcmshc", "dw_mmc_rockchip", "phy_rockchip_naneng_combphy",
                        "pcie_dw_rockchip", "ext4"]

BOARDS: dict[str, dict[str, Any]] = {
    "radxa-rock-5-itx-plus": {
        "soc": "rk3588", "dtb": "rockchip/rk3588-rock-5-itx.dtb", "console": "ttyS2,1500000",
        "watchdog_module": "dw_wdt", "initramfs_modules": _RK3588_ROOT_DRIVERS,
        "source": "Linux 7.2 arch/arm64/boot/dts/rockchip/rk3588-rock-5-itx.dts (stdout-path serial2:1500000n8); "
                  "the ITX+ has no DTS of its own in 7.2: it is the ROCK 5 ITX with more memory options (Radxa's "
                  "docs; docs/hardware-validation.md K1 checks that it boots)",
    },
    "radxa-rock-5-itx": {
        "soc": "rk3588", "dtb": "rockchip/rk3588-rock-5-itx.dtb", "console": "ttyS2,1500000",
        "watchdog_module": "dw_wdt", "initramfs_modules": _RK3588_ROOT_DRIVERS,
        "source": "Linux 7.2 arch/arm64/boot/dts/rockchip/rk3588-rock-5-itx.dts (stdout-path serial2:1500000n8)",
    },
    "radxa-rock-5b": {
        "soc": "rk3588", "dtb": "rockchip/rk3588-rock-5b.dtb", "console": "ttyS2,1500000",
        "watchdog_module": "dw_wdt", "initramfs_modules": _RK3588_ROOT_DRIVERS,
        "source": "Linux 7.2 arch/arm64/boot/dts/rockchip/rk3588-rock-5b.dts (stdout-path serial2:1500000n8)",
    },
    "qemu-virt-arm64": {
        # The virtual board: QEMU generates its device tree; the watchdog is the i6300esb it is given.
        "soc": "qemu-virt", "dtb": "", "console": "ttyAMA0,115200", "watchdog_module": "i6300esb",
        "initramfs_modules": ["virtio_pci", "virtio_blk", "ext4"],
        "source": "QEMU's virt machine (docs/system/arm/virt.rst); -device i6300esb",
    },
    "generic-linux": {
        # Stand-in hosts (the controller in `make demo`, fleet test hosts): nothing is built for them.
        "soc": "none", "dtb": "", "console": "", "watchdog_module": "", "initramfs_modules": [],
        "source": "not a board",
    },
}


class BoardError(ValueError):
    """A board model the catalogue does not have."""


def board(model: str) -> dict[str, Any]:
    """The board's entry with its SoC's merged in (`soc` stays the SoC's name, `model` is added)."""
    try:
        entry = BOARDS[model]
    except KeyError:
        raise BoardError("board model %r is not in the catalogue: expected one of %s"
                         % (model, ", ".join(BOARDS))) from None
    return dict(SOCS[entry["soc"]], **entry, model=model)


def npu_socs() -> dict[str, dict[str, Any]]:
    """The SoCs with an NPU, by name."""
    return {name: soc for name, soc in SOCS.items() if soc["npu"]}


def npu_for_compatible(compatible: str) -> dict[str, Any] | None:
    """The NPU description whose core compatible string this is."""
    return next((soc["npu"] for soc in npu_socs().values() if soc["npu"]["compatible"] == compatible), None)
