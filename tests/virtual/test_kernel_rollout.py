"""Safe kernel rollout (playbooks/flash.yml, playbooks/rollback.yml) on the virtual boards our image makes.
`make test` runs boltzmann's own case, a GRUB its distribution manages (tests/virtual/test_distribution_board.py);
here, in the slow tier: on our image's edk2 + GRUB (GRUB one-shot trial) refusals, a good rollout, the re-run,
rollback; then, each on a freshly started board, every fault case on edk2 + GRUB and on U-Boot + extlinux
(kexec trial). The cases are in tests/virtual/rollout.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.virtual.conftest import CACHE, VirtualBoard, start_board, stop_board
from tests.virtual.rollout import Rollout, run_faults, run_good_path

pytestmark = pytest.mark.changes_kernel


@pytest.mark.slow
def test_rollout_on_uefi_grub(virtual_board: VirtualBoard, tmp_path: Path) -> None:
    rollout = run_good_path(virtual_board, tmp_path)
    assert len(rollout.cases) == 9


@pytest.mark.slow
@pytest.mark.parametrize("host", ["virtual-uefi", "virtual-uboot"])
def test_rollout_faults(host: str, tmp_path: Path) -> None:
    board = start_board(host)
    try:
        rollout = run_faults(board, tmp_path)
        assert len(rollout.cases) == 13
    finally:
        stop_board(host)


@pytest.mark.slow
def test_rollout_of_the_kernel_stage_artifact(tmp_path: Path) -> None:
    """The artifact the kernel stage's slow tier built (tests/integration/test_kernel_full_build.py), rolled
    out to the virtual board: it boots on QEMU virt (virt-board.config) and its rocket module loads."""
    artifacts = sorted(CACHE.glob("tests/kernel-full-build/artifacts/*-rosenblatt-*/manifest.json"))
    if not artifacts:
        pytest.fail("no kernel-stage artifact: run tests/integration/test_kernel_full_build.py first (make test-slow)")
    board = start_board("virtual-uefi")
    try:
        rollout = Rollout(board, artifacts[-1].parent, tmp_path / "reports")
        known_good = rollout.running()
        result = rollout.flash(None, "-e", '{"kernel_rollout_modules": ["rocket"]}')
        assert result.returncode == 0, result.stdout[-5000:]
        assert rollout.running() == rollout.release and rollout.release.endswith("-rosenblatt")
        assert rollout.report()["outcome"] == "committed"
        assert rollout.boot_json()["entries"][0]["release"] == known_good
    finally:
        stop_board("virtual-uefi")
