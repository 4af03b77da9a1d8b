"""Safe kernel rollout (playbooks/flash.yml, playbooks/rollback.yml) on the virtual boards. `make test`:
edk2 + GRUB (boltzmann's chain, GRUB one-shot trial), refusals, a good rollout, the re-run, rollback.
Slow tier, each on a freshly started board: every fault case on edk2 + GRUB and on U-Boot + extlinux
(kexec trial). The cases are in tests/virtual/rollout.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.virtual.conftest import VirtualBoard, start_board, stop_board
from tests.virtual.rollout import run_faults, run_good_path

pytestmark = pytest.mark.changes_kernel


def test_rollout_on_uefi_grub(virtual_board: VirtualBoard, tmp_path: Path) -> None:
    rollout = run_good_path(virtual_board, tmp_path)
    assert len(rollout.cases) == 8


@pytest.mark.slow
@pytest.mark.parametrize("host", ["virtual-uefi", "virtual-uboot"])
def test_rollout_faults(host: str, tmp_path: Path) -> None:
    board = start_board(host)
    try:
        rollout = run_faults(board, tmp_path)
        assert len(rollout.cases) == 12
    finally:
        stop_board(host)
