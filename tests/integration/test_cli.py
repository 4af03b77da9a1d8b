"""The `rosenblatt` command: inventory edits (byte-exact, validated, refused with a named value) and errors."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, rosenblatt


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    copy = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", copy)
    return copy


def snapshot(inventory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(inventory)): path.read_bytes() for path in sorted(inventory.rglob("*"))
            if path.is_file()}


def test_board_add_changes_only_what_it_must_and_remove_restores_every_byte(inventory: Path) -> None:
    before = snapshot(inventory)
    added = rosenblatt("-i", str(inventory), "board", "add", "feynman", "--address", "192.0.2.10",
                       "--model", "radxa-rock-5b", "--ram-gib", "16", "--port", "2222")
    assert added.returncode == 0, added.stderr
    after = snapshot(inventory)
    assert set(after) - set(before) == {"host_vars/feynman.yml"}
    assert [name for name in before if before[name] != after[name]] == ["hosts.yml"]
    old_lines, new_lines = before["hosts.yml"].decode().splitlines(), after["hosts.yml"].decode().splitlines()
    inserted = [line for line in new_lines if line not in old_lines]
    assert inserted == ["        feynman:"]
    assert [line for line in new_lines if line != "        feynman:"] == old_lines  # comments and order kept
    host_vars = after["host_vars/feynman.yml"].decode()
    assert "board_soc: rk3588\n" in host_vars and "board_port: 2222\n" in host_vars
    assert "board_shared: false\n" in host_vars

    removed = rosenblatt("--json", "-i", str(inventory), "board", "remove", "feynman")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["removed"] == [str(inventory / "host_vars" / "feynman.yml")]
    assert snapshot(inventory) == before


@pytest.mark.parametrize(("args", "message"), [
    (["board", "add", "boltzmann", "--address", "192.0.2.11", "--model", "radxa-rock-5b", "--ram-gib", "8"],
     "board 'boltzmann' is already in"),
    (["board", "add", "b2", "--address", "boltzmann.local", "--model", "radxa-rock-5b", "--ram-gib", "8"],
     "b2, boltzmann: board_address boltzmann.local port 22 is used by more than one host"),
    (["board", "add", "b2", "--address", "300.1.2.3", "--model", "radxa-rock-5b", "--ram-gib", "8"],
     "b2: board_address is '300.1.2.3' (expected a host name or an IP address)"),
    (["board", "add", "b2", "--address", "192.0.2.12", "--model", "rock-9000", "--ram-gib", "8"],
     "board model 'rock-9000' is unknown"),
    (["board", "add", "b2", "--address", "192.0.2.12", "--model", "radxa-rock-5b", "--ram-gib", "0"],
     "b2: board_ram_gib is 0 (expected a whole number of GiB, 1 to 1024)"),
    (["board", "add", "b_2", "--address", "192.0.2.12", "--model", "radxa-rock-5b", "--ram-gib", "8"],
     "board name 'b_2' is not a valid host name"),
    (["board", "add", "b2", "--address", "192.0.2.12", "--model", "radxa-rock-5b", "--ram-gib", "8",
      "--group", "rk3399"], "group 'rk3399' is not in"),
    (["board", "remove", "nobody"], "board 'nobody' is not in"),
    (["verify", "nobody"], "unknown board nobody (inventory"),
    (["rollback", "nobody"], "unknown board nobody (inventory"),
    (["rollout", "kernel", "--canary", "nobody"], "unknown board nobody (inventory"),
    (["rollout", "kernel"], "rollout kernel needs --artifact FOLDER"),
    (["rollout", "kernel", "--artifact", "/nonexistent"], "--artifact /nonexistent: not a kernel artifact"),
])
def test_bad_input_is_refused_naming_the_value_and_nothing_changes(inventory: Path, args: list[str],
                                                                    message: str) -> None:
    before = snapshot(inventory)
    result = rosenblatt("-i", str(inventory), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert snapshot(inventory) == before
    as_json = rosenblatt("--json", "-i", str(inventory), *args)
    assert as_json.returncode == 2 and message in json.loads(as_json.stdout)["error"]


@pytest.mark.parametrize(("args", "message"), [
    (["rollout", "kernel", "--batch", "0"], "'0' is not a host count"),
    (["rollout", "kernel", "--batch", "150%"], "'150%' is not a host count"),
    (["rollout", "kernel", "--max-fail", "101"], "'101' is not a percentage"),
    (["-e", "kernel_build_jobs", "kernel", "build"], "'kernel_build_jobs' is neither KEY=VALUE nor a JSON object"),
    (["-e", "{not json", "kernel", "build"], "'{not json' is not a JSON object"),
    (["board", "add", "b2", "--address", "192.0.2.12", "--model", "radxa-rock-5b"], "--ram-gib"),
])
def test_usage_errors_exit_2(inventory: Path, args: list[str], message: str) -> None:
    result = rosenblatt("-i", str(inventory), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_inventory_is_named(tmp_path: Path) -> None:
    result = rosenblatt("-i", str(tmp_path / "nowhere"), "fleet", "status")
    assert result.returncode == 2
    assert f"inventory {tmp_path / 'nowhere'} does not exist" in result.stderr


def test_global_options_after_the_command_as_a_person_types_them(inventory: Path, tmp_path: Path) -> None:
    """`rosenblatt verify nobody --json -i INV` is `rosenblatt --json -i INV verify nobody`; -e given on both
    sides adds up."""
    after = rosenblatt("verify", "nobody", "--json", "-i", str(inventory), "--check")
    before = rosenblatt("--json", "-i", str(inventory), "--check", "verify", "nobody")
    assert after.returncode == before.returncode == 2, after.stdout + after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert "unknown board nobody (inventory" in json.loads(after.stdout)["error"]
    late_secret = rosenblatt("-i", str(inventory), "-e", "a=1", "kernel", "build", "-e", "db_password=x")
    assert late_secret.returncode == 2 and "-e db_password: a secret given with -e" in late_secret.stderr
    missing = rosenblatt("fleet", "status", "-i", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and f"inventory {tmp_path / 'nowhere'} does not exist" in missing.stderr


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command of the parser, keyed as the CLI keys its stages (`rollout kernel`: rollout-kernel)."""
    commands = next((action for action in parser._actions if isinstance(action, argparse._SubParsersAction)), None)
    if commands is None:
        action = next((action for action in parser._actions if action.dest == "action"), None)
        return [f"{prefix}-{choice}" for choice in action.choices] if action else [prefix]
    return [leaf for name, child in commands.choices.items()
            for leaf in _leaf_commands(child, f"{prefix}-{name}" if prefix else name)]


def test_every_command_that_runs_playbooks_has_a_stage_and_its_playbooks_exist() -> None:
    from rosenblatt.cli import STAGES, _parser  # noqa: PLC0415

    commands = _leaf_commands(_parser())
    assert "virtual-down" in commands and "rollout-kernel" in commands
    assert set(STAGES) == {command for command in commands if not command.startswith("board-")}
    assert [path for stage in STAGES.values() for path in stage.playbooks if not (REPO / path).is_file()] == []


def test_exit_codes_are_named_once_and_documented_as_named() -> None:
    from rosenblatt.run import Exit  # noqa: PLC0415

    usage = rosenblatt("--help")
    fleet_doc = " ".join((REPO / "docs/fleet.md").read_text().split())
    for code in Exit:
        assert f"{code.value} {code.meaning}" in " ".join(usage.stdout.split())
        assert f"`{code.value}` {code.meaning}" in fleet_doc, f"docs/fleet.md: exit code {code.value}"
