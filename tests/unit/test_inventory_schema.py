"""The inventory rules themselves; tests/integration/test_validate_playbook.py runs them through Ansible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.inventory_schema import (
    confirmation_problems,
    validate_fleet,
)

REPO = Path(__file__).resolve().parents[2]
PINS = yaml.safe_load((REPO / "inventory/group_vars/all.yml").read_text())


def board(**overrides: Any) -> dict[str, Any]:
    variables = {key: value for key, value in PINS.items() if key.startswith("rosenblatt_")}
    variables.update(yaml.safe_load((REPO / "inventory/host_vars/boltzmann.yml").read_text()))
    variables.update(overrides)
    return variables


def test_the_real_fleet_is_valid() -> None:
    assert validate_fleet({"boltzmann": board()}) == []


def test_missing_variable_is_named() -> None:
    variables = board()
    del variables["board_ram_gib"]
    assert validate_fleet({"boltzmann": variables}) == [
        "boltzmann: board_ram_gib is missing (expected a whole number of GiB, 1 to 1024)"]


def test_wrong_type_is_named_with_the_value() -> None:
    assert validate_fleet({"b1": board(board_ram_gib="32GB")}) == [
        "b1: board_ram_gib is a string '32GB' (expected a whole number of GiB, 1 to 1024)"]


def test_boolean_is_not_an_integer() -> None:
    assert validate_fleet({"b1": board(board_ram_gib=True)})[0].startswith("b1: board_ram_gib is a boolean True")


def test_unknown_board_model() -> None:
    problems = validate_fleet({"b1": board(board_model="rock-5-itx++")})
    assert problems[0].startswith("b1: board_model is 'rock-5-itx++' (expected one of radxa-rock-5-itx-plus,")


def test_soc_must_match_the_model() -> None:
    assert validate_fleet({"b1": board(board_soc="rk3568")}) == [
        "b1: board_soc is 'rk3568' but board_model radxa-rock-5-itx-plus has SoC 'rk3588'"]


def test_malformed_sha256() -> None:
    bad = "6A1A2EB6D15622BF3C96857206351BA97E1AF16C30D7A74EE38970E434E9407"
    assert validate_fleet({"b1": board(rosenblatt_model_sha256=bad)}) == [
        f"b1: rosenblatt_model_sha256 is '{bad}' (expected 64 lowercase hex digits)"]


def test_bad_addresses() -> None:
    for address in ("300.1.2.3", "bolt zmann", "-x.example", ""):
        problems = validate_fleet({"b1": board(board_address=address)})
        assert problems == [f"b1: board_address is {address!r} (expected a host name or an IP address)"], address


def test_duplicate_addresses_name_every_host() -> None:
    fleet = {"b1": board(board_address="10.0.0.5"), "b2": board(board_address="10.0.0.5"),
             "b3": board(board_address="10.0.0.5", board_port=2222)}
    assert validate_fleet(fleet) == ["b1, b2: board_address 10.0.0.5 port 22 is used by more than one host"]


def test_shared_board_needs_confirmation_naming_it() -> None:
    fleet = {"boltzmann": board(), "spare": board(board_shared=False, board_address="spare.local")}
    assert confirmation_problems(fleet, None) == [
        "boltzmann: board_shared is true and this stage changes the board: re-run with "
        "-e rosenblatt_confirm=boltzmann to confirm for this run"]
    assert confirmation_problems(fleet, "spare,boltzmann") == []
    assert confirmation_problems(fleet, "boltzman") != []


def test_network_and_flash_descriptions_are_checked() -> None:
    good = board(board_network={"mode": "static", "address": "192.0.2.10/24", "gateway": "192.0.2.1"},
                 board_flash={"method": "block-device", "device": "/dev/disk/by-id/usb-x", "size_bytes": 64 << 30})
    assert validate_fleet({"b1": good}) == []
    problems = validate_fleet({"b1": board(board_network={"mode": "static", "address": "192.0.2.10"},
                                           board_flash={"method": "rkdeveloptool", "size_bytes": 1})})
    assert [problem.split(" (expected")[0] for problem in problems] == [
        "b1: board_network is {'mode': 'static', 'address': '192.0.2.10'}",
        "b1: board_flash is {'method': 'rkdeveloptool', 'size_bytes': 1}"]
