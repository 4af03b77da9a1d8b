"""A bad inventory fails in seconds, naming host and variable, before any host is contacted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, run_playbook


def write_inventory(directory: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    (directory / "group_vars").mkdir(parents=True)
    (directory / "group_vars/all.yml").write_text((REPO / "inventory/group_vars/all.yml").read_text())
    # Unreachable on purpose: validation must never try to connect.
    document = {"all": {"children": {"rk3588": {"hosts": hosts}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(document))
    return directory


def board(address: str, **overrides: Any) -> dict[str, Any]:
    variables = yaml.safe_load((REPO / "inventory/host_vars/boltzmann.yml").read_text())
    variables.update(board_address=address, board_shared=False, ansible_connection="ssh",
                     ansible_ssh_common_args="-o ConnectTimeout=1")
    variables.update(overrides)
    return variables


@pytest.mark.parametrize(("hosts", "expected"), [
    ({"b1": board("192.0.2.1"), "b2": {k: v for k, v in board("192.0.2.2").items() if k != "board_boot_chain"}},
     "b2: board_boot_chain is missing"),
    ({"b1": board("192.0.2.1", board_ram_gib="lots")}, "b1: board_ram_gib is a string 'lots'"),
    ({"b1": board("192.0.2.1", board_model="orangepi-5-max")}, "b1: board_model is 'orangepi-5-max'"),
    ({"b1": board("192.0.2.1", rosenblatt_model_sha256="abc123")}, "b1: rosenblatt_model_sha256 is 'abc123'"),
    ({"b1": board("192.0.2.1"), "b2": board("192.0.2.1")}, "b1, b2: board_address 192.0.2.1 port 22 is used"),
    ({"b1": board("192.0.2.1", board_address="{{ no_such_variable }}")}, "b1: board_address cannot be evaluated"),
], ids=["missing", "wrong-type", "unknown-model", "bad-sha256", "duplicate-address", "undefined-template"])
def test_bad_inventory_fails_fast_naming_the_field(tmp_path: Path, hosts: dict, expected: str) -> None:
    inventory = write_inventory(tmp_path / "inventory", hosts)
    started = time.monotonic()
    result = run_playbook("-i", str(inventory), "playbooks/probe.yml")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert expected in result.stdout
    assert "inventory check failed" in result.stdout
    assert "Probe the NPU" not in result.stdout  # no task ran on any host
    assert elapsed < 30


def test_shared_board_stage_refused_without_confirmation(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory", {"b1": board("192.0.2.1", board_shared=True)})
    result = run_playbook("-i", str(inventory), "playbooks/validate.yml", "-e", "rosenblatt_stage_changes_boards=true")
    assert result.returncode != 0
    assert "b1: board_shared is true and this stage changes the board: re-run with -e rosenblatt_confirm=b1" \
        in result.stdout
    confirmed = run_playbook("-i", str(inventory), "playbooks/validate.yml",
                             "-e", "rosenblatt_stage_changes_boards=true", "-e", "rosenblatt_confirm=b1")
    assert confirmed.returncode == 0, confirmed.stdout
    # A dry run changes nothing, so it shows the plan without the confirmation.
    dry_run = run_playbook("-i", str(inventory), "playbooks/validate.yml", "--check",
                           "-e", "rosenblatt_stage_changes_boards=true")
    assert dry_run.returncode == 0, dry_run.stdout


def test_real_inventory_passes(tmp_path: Path) -> None:
    result = run_playbook("playbooks/validate.yml")
    assert result.returncode == 0, result.stdout
    assert "inventory check passed for 1 host(s)" in result.stdout
