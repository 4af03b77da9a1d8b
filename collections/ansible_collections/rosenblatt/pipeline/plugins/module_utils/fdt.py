# Copyright: rosenblatt developers
# MIT License
"""Read a flattened device tree (DTB) and check that it enables the RK3588 NPU for the rocket driver.

The DTB format is the Devicetree Specification's (v0.4, chapter 5): a header, a structure block of
FDT_BEGIN_NODE / FDT_PROP / FDT_END_NODE tokens and a strings block with property names. Only what
the check needs is decoded; no external tool or library is required, so this also runs on a board.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boards import SOCS

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
NPU_COMPATIBLE = SOCS["rk3588"]["npu"]["compatible"]
NPU_CORES = len(SOCS["rk3588"]["npu"]["cores"])


class FdtError(Exception):
    """Not a readable DTB, or a DTB that fails the NPU check (a message for a person)."""


@dataclass
class Node:
    path: str
    properties: dict[str, bytes] = field(default_factory=dict)

    def string(self, name: str) -> str | None:
        value = self.properties.get(name)
        return None if value is None else value.split(b"\0", 1)[0].decode("utf-8", "replace")

    def strings(self, name: str) -> list[str]:
        value = self.properties.get(name, b"")
        return [part.decode("utf-8", "replace") for part in value.split(b"\0") if part]

    def cells(self, name: str) -> list[int]:
        value = self.properties.get(name, b"")
        return list(struct.unpack(">%dI" % (len(value) // 4), value[: len(value) // 4 * 4]))

    @property
    def enabled(self) -> bool:
        # Devicetree Specification 2.3.4: a node without status is "okay".
        return self.string("status") in (None, "okay", "ok")


def parse(blob: bytes) -> dict[str, Node]:
    """Every node of the tree by path ("/", "/npu@fdab0000", ...)."""
    if len(blob) < 40:
        raise FdtError("too short for a DTB (%d bytes)" % len(blob))
    magic, total, off_struct, off_strings, _, version, _, _, size_strings, size_struct = struct.unpack(
        ">10I", blob[:40])
    if magic != FDT_MAGIC:
        raise FdtError("not a DTB (magic 0x%08x)" % magic)
    if total > len(blob) or version < 17:
        raise FdtError("truncated DTB or unsupported version %d" % version)
    strings = blob[off_strings:off_strings + size_strings]
    nodes: dict[str, Node] = {}
    stack: list[str] = []
    position, end = off_struct, off_struct + size_struct
    while position < end:
        (token,) = struct.unpack_from(">I", blob, position)
        position += 4
        if token == FDT_BEGIN_NODE:
            name_end = blob.index(b"\0", position)
            name = blob[position:name_end].decode("utf-8", "replace")
            position = (name_end + 4) & ~3
            path = "/" if not stack else (stack[-1].rstrip("/") + "/" + name)
            stack.append(path)
            nodes[path] = Node(path)
        elif token == FDT_END_NODE:
            if not stack:
                raise FdtError("unbalanced node end at offset %d" % position)
            stack.pop()
        elif token == FDT_PROP:
            length, name_offset = struct.unpack_from(">II", blob, position)
            position += 8
            name = strings[name_offset:strings.index(b"\0", name_offset)].decode("utf-8", "replace")
            if not stack:
                raise FdtError("property outside a node at offset %d" % position)
            nodes[stack[-1]].properties[name] = blob[position:position + length]
            position = (position + length + 3) & ~3
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            break
        else:
            raise FdtError("bad structure token %d at offset %d" % (token, position - 4))
    return nodes


def read(path: str) -> dict[str, Node]:
    try:
        with open(path, "rb") as handle:
            return parse(handle.read())
    except OSError as exc:
        raise FdtError("cannot read %s: %s" % (path, exc.strerror)) from None
    except FdtError as exc:
        raise FdtError("%s: %s" % (path, exc)) from None


def npu_report(nodes: dict[str, Node]) -> dict[str, Any]:
    """The NPU as this tree describes it, and every reason it would not work with rocket."""
    by_phandle = {node.cells("phandle")[0]: node for node in nodes.values() if len(node.cells("phandle")) == 1}
    model = nodes["/"].string("model") if "/" in nodes else None
    cores, problems = [], []
    for node in nodes.values():
        if NPU_COMPATIBLE not in node.strings("compatible"):
            continue
        core: dict[str, Any] = {"path": node.path, "status": node.string("status") or "okay (no status)",
                                "enabled": node.enabled, "npu_supply": None, "iommu": None,
                                "iommu_enabled": False, "assigned_clock_rates": node.cells("assigned-clock-rates")}
        if not node.enabled:
            problems.append("%s: status is %r, not \"okay\"" % (node.path, node.string("status")))
        supply = node.cells("npu-supply")
        if not supply:
            problems.append("%s: has no npu-supply" % node.path)
        elif supply[0] not in by_phandle:
            problems.append("%s: npu-supply points to no node (phandle %d)" % (node.path, supply[0]))
        else:
            core["npu_supply"] = by_phandle[supply[0]].string("regulator-name") or by_phandle[supply[0]].path
        iommus = node.cells("iommus")
        iommu = by_phandle.get(iommus[0]) if iommus else None
        if iommu is None:
            problems.append("%s: has no IOMMU (iommus missing or dangling)" % node.path)
        else:
            core["iommu"], core["iommu_enabled"] = iommu.path, iommu.enabled
            if not iommu.enabled:
                problems.append("%s: IOMMU %s status is %r, not \"okay\"" % (node.path, iommu.path,
                                                                           iommu.string("status")))
        cores.append(core)
    if len(cores) != NPU_CORES:
        problems.insert(0, "expected %d %s nodes, found %d" % (NPU_CORES, NPU_COMPATIBLE, len(cores)))
    return {"model": model, "cores": cores, "problems": problems, "ok": not problems}


def verify_npu(path: str) -> dict[str, Any]:
    """npu_report of the DTB at path; FdtError naming the DTB and every problem if the NPU is not usable."""
    report = npu_report(read(path))
    if not report["ok"]:
        raise FdtError("%s does not enable the NPU: %s" % (path, "; ".join(report["problems"])))
    return report
