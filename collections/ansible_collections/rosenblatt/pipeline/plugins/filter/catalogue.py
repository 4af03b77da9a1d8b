# Copyright: rosenblatt developers
# MIT License
"""Filters for the two catalogues roles read, so each has one home:
- boot chains (module_utils/boot_chains.py): `chain | rosenblatt.pipeline.boot_chain` is its descriptor,
  `method | rosenblatt.pipeline.boot_trial_step('set', boot_dir=..., release=..., ...)` a trial step's argv,
  `chain | rosenblatt.pipeline.boot_commit(boot_dir=..., release=...)` a commit's;
- boards (module_utils/boards.py): `board_model | rosenblatt.pipeline.board` is the board's entry with its SoC's,
  `models | rosenblatt.pipeline.board_dtbs` the DTBs of those models that have an NPU.
`boot_chain` and `board` take `missing={}` to get that instead of an error for a name the catalogue lacks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import boards, boot_chains


def _entry(read: Callable[[str], dict[str, Any]], name: str, missing: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return read(name)
    except (boards.BoardError, boot_chains.BootChainError) as exc:
        if missing is not None:
            return missing
        raise AnsibleFilterError(str(exc)) from None


def boot_chain(chain: str, missing: dict[str, Any] | None = None) -> dict[str, Any]:
    return _entry(boot_chains.descriptor, chain, missing)


def board(model: str, missing: dict[str, Any] | None = None) -> dict[str, Any]:
    return _entry(boards.board, model, missing)


def boot_trial_step(method: str, step: str, **values: str) -> list[str]:
    try:
        return boot_chains.trial_argv(method, step, **values)
    except boot_chains.BootChainError as exc:
        raise AnsibleFilterError(str(exc)) from None


def boot_commit(chain: str, **values: str) -> list[str]:
    try:
        return boot_chains.commit_argv(chain, **values)
    except boot_chains.BootChainError as exc:
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
        return {"boot_chain": boot_chain, "boot_trial_step": boot_trial_step, "boot_commit": boot_commit,
                "board": board, "board_dtbs": board_dtbs}
