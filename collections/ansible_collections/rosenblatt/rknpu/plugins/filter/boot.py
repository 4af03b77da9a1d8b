# Copyright: rosenblatt developers
# MIT License
"""Filters for the boot chain descriptors (module_utils/boot_chains.py), so roles read the one description:
`'uefi-grub' | rosenblatt.rknpu.boot_chain` is the descriptor, `'kexec' | rosenblatt.rknpu.boot_trial_step('set',
boot_dir='/boot', release=r, ...)` a trial step's argv, `chain | rosenblatt.rknpu.boot_commit(...)` a commit's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.boot_chains import (
    BootChainError,
    commit_argv,
    descriptor,
    trial_argv,
)


def boot_chain(chain: str, missing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The descriptor; for a chain without one, `missing` when given, else an error naming the chains."""
    try:
        return descriptor(chain)
    except BootChainError as exc:
        if missing is not None:
            return missing
        raise AnsibleFilterError(str(exc)) from None


def boot_trial_step(method: str, step: str, **values: str) -> list[str]:
    try:
        return trial_argv(method, step, **values)
    except BootChainError as exc:
        raise AnsibleFilterError(str(exc)) from None


def boot_commit(chain: str, **values: str) -> list[str]:
    try:
        return commit_argv(chain, **values)
    except BootChainError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"boot_chain": boot_chain, "boot_trial_step": boot_trial_step, "boot_commit": boot_commit}
