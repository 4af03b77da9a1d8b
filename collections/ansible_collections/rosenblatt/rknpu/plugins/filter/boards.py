# Copyright: rosenblatt developers
# MIT License
"""Filters for the board catalogue (module_utils/boards.py): `board_model | rosenblatt.rknpu.board` is the
board's entry with its SoC's, `models | rosenblatt.rknpu.board_dtbs` the DTBs of those models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.boards import BoardError
from ansible_collections.rosenblatt.rknpu.plugins.module_utils.boards import board as catalogue_board


def board(model: str, missing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entry; for a model the catalogue lacks, `missing` when given, else an error naming the models."""
    try:
        return catalogue_board(model)
    except BoardError as exc:
        if missing is not None:
            return missing
        raise AnsibleFilterError(str(exc)) from None


def board_dtbs(models: Iterable[str]) -> list[str]:
    """The distinct DTBs of these board models whose SoC has an NPU, in order (what the kernel stage verifies)."""
    dtbs: list[str] = []
    for model in models:
        entry = board(model)
        if entry["npu"] and entry["dtb"] and entry["dtb"] not in dtbs:
            dtbs.append(entry["dtb"])
    return dtbs


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"board": board, "board_dtbs": board_dtbs}
