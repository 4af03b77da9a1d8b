"""The virtual board for tests: one boot per test session, shared by every test (and later stages' tests).

The image is built (or found in $ROSENBLATT_CACHE) and the board started through the same playbook a
user runs (playbooks/virtual-board.yml, tests/inventory/virtual), from a fresh overlay, and stopped at
the end of the session.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BIN, CACHE, REPO, played, rosenblatt_ok, run_playbook

INVENTORY = "tests/inventory/virtual"
# The chain `make test` boots: edk2 + GRUB, as boltzmann boots. The slow tier boots U-Boot + extlinux.
DEFAULT_HOST = "virtual-uefi"


@dataclass
class VirtualBoard:
    host: str
    start_seconds: float
    start_output: str

    @property
    def run_dir(self) -> Path:
        return CACHE / "virtual-board/run" / self.host

    def playbook(self, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        return run_playbook("-i", INVENTORY, "--limit", self.host, *args, timeout=timeout)

    def command(self, *argv: str, timeout: int = 120) -> str:
        """Run a command on the board over SSH (as Ansible logs in), return its stdout."""
        result = subprocess.run(
            [str(BIN / "ansible"), "-i", INVENTORY, self.host, "-m", "ansible.builtin.command",
             "-a", json.dumps({"argv": list(argv)})],
            cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
            capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        # The minimal callback: "<host> | CHANGED | rc=0 >>" then the command's output.
        header, _, output = result.stdout.partition(">>\n")
        assert header.startswith(f"{self.host} | CHANGED | rc=0"), result.stdout
        return output

    @property
    def image_path(self) -> Path:
        """The image the board was started from, as the image play reported it."""
        match = re.search(r"(/\S+/images/[0-9a-f]{16}/disk\.img)", self.start_output)
        assert match, self.start_output
        return Path(match.group(1))

    def image_manifest(self) -> dict:
        return json.loads((self.image_path.parent / "manifest.json").read_text())


def start_board(host: str, *extra_vars: str) -> VirtualBoard:
    """`rosenblatt virtual up HOST --fresh`: the image built or found, QEMU started from a fresh overlay."""
    started = time.monotonic()
    outcome = rosenblatt_ok("-i", INVENTORY, *extra_vars, "virtual", "up", host, "--fresh", timeout=3600)
    return VirtualBoard(host, time.monotonic() - started, played(outcome))


def stop_board(host: str) -> str:
    """`rosenblatt virtual down HOST`; what the play printed."""
    return played(rosenblatt_ok("-i", INVENTORY, "virtual", "down", host, timeout=300))


@pytest.fixture(scope="session")
def virtual_board() -> Iterator[VirtualBoard]:
    board = start_board(DEFAULT_HOST)
    yield board
    stop_board(DEFAULT_HOST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that change the shared virtual board's kernel run last."""
    items.sort(key=lambda item: item.get_closest_marker("changes_kernel") is not None)
