"""The inventory rules themselves; tests/integration/test_validate_playbook.py runs them through Ansible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_schema import (
    PIN_FIELDS,
    confirmation_problems,
    host_name_problems,
    one_edit_apart,
    validate_fleet,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import load_role_inputs, shown
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import LLAMA_CPP_COMMIT

REPO = Path(__file__).resolve().parents[2]
PINS = yaml.safe_load((REPO / "inventory/group_vars/all.yml").read_text())
INPUTS = load_role_inputs(REPO / "roles")


def board(**overrides: Any) -> dict[str, Any]:
    variables = {key: value for key, value in PINS.items() if key in PIN_FIELDS}
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


def test_a_boot_chain_without_a_descriptor_is_refused_naming_the_supported_ones() -> None:
    assert validate_fleet({"b1": board(board_boot_chain="uefi-systemd-boot")}) == [
        "b1: board_boot_chain is 'uefi-systemd-boot' (expected one of uefi-grub, uefi-grub-distribution, "
        "uboot-extlinux, none)"]
    assert validate_fleet({"b1": board(board_boot_chain="uefi-grub-distribution")}) == []


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


def test_network_gateway_and_dns_are_addresses_in_the_network() -> None:
    for network in ({"mode": "static", "address": "192.0.2.10/24", "gateway": "198.51.100.1"},
                    {"mode": "static", "address": "192.0.2.10/24", "dns": ["8.8.8.8", "dns.example"]},
                    {"mode": "static", "address": "192.0.2.0/24"},
                    {"mode": "dhcp", "address": "192.0.2.10/24"},
                    {"mode": "static", "address": "192.0.2.10/24", "gatway": "192.0.2.1"}):
        assert validate_fleet({"b1": board(board_network=network)})[0].startswith("b1: board_network is "), network


def test_flash_and_console_devices_are_device_paths() -> None:
    problems = validate_fleet({"b1": board(board_flash={"method": "block-device", "device": "/dev/../etc/passwd",
                                                        "size_bytes": 1 << 30},
                                           board_serial_console={"device": "/dev/ttyUSB0", "baud": 1500001})})
    assert [problem.split(" is ")[0] for problem in problems] == ["b1: board_serial_console", "b1: board_flash"]


def test_patterns_match_the_whole_value() -> None:
    for name, value in (("rosenblatt_kernel_tag", "v7.2.13; rm -rf /"), ("board_address", "boltzmann.local\n"),
                        ("rosenblatt_model_sha256", "a" * 64 + "\n"), ("board_distribution", "bredos linux")):
        problems = validate_fleet({"b1": board(**{name: value})})
        assert problems and problems[0].startswith("b1: %s is " % name), (name, problems)


def test_tag_pin_needs_to_be_accepted_knowingly() -> None:
    problems = validate_fleet({"b1": board(rosenblatt_tag_pins=[])})
    assert problems == ["b1: rosenblatt_kernel_tag is the tag 'v7.2.13', not a commit: a tag can be moved; pin the "
                        "40-digit commit, or list rosenblatt_kernel_tag in rosenblatt_tag_pins (group_vars/all) "
                        "to accept the tag knowingly"]


def test_a_pin_no_test_builds_is_refused() -> None:
    untested = "1" * 40
    problems = validate_fleet({"b1": board(rosenblatt_llama_cpp_ref=untested)})
    assert problems == ["b1: rosenblatt_llama_cpp_ref is %r, which no test builds: the tests build %s (llama.cpp "
                        "b11312, the vendor/llama.cpp of the llama-cpp-python 0.3.36 sdist, which the runtime tests "
                        "build); pin that, or move the test input to the new version first "
                        "(module_utils/tested_sources.py)" % (untested, LLAMA_CPP_COMMIT)]
    assert validate_fleet({"b1": board(rosenblatt_kernel_tag="v7.2.14")})[0].startswith(
        "b1: rosenblatt_kernel_tag is 'v7.2.14', which no test builds: the tests build v7.2.13 (Linux 7.2.13 from")


def test_git_sources_need_an_authenticated_transport() -> None:
    for url in ("http://git.kernel.org/linux.git", "git://git.kernel.org/linux.git", "ftp://x/y"):
        problems = validate_fleet({"b1": board(rosenblatt_kernel_git_url=url)})
        assert problems == ["b1: rosenblatt_kernel_git_url is %r (expected an https:// or file:/// URL, or an "
                            "absolute path)" % url]


def test_role_inputs_are_checked_in_the_users_words() -> None:
    problems = validate_fleet({"b1": board(kernel_rollout_keep=-3, inference_verify_cpus="4-", model_cache_dir="cache",
                                           kernel_build_fragments=["../../etc/shadow"],
                                           inference_verify_npu_backend="gpu",
                                           kernel_rollout_checks=[{"name": "x"}])}, INPUTS)
    assert sorted(problems) == [
        "b1: inference_verify_cpus is '4-' (expected a CPU list or empty)",
        "b1: inference_verify_npu_backend is 'gpu' (expected one of rocket, rocket-emulated, model)",
        "b1: kernel_build_fragments[0] is '../../etc/shadow' (expected a file name or an absolute path)",
        "b1: kernel_rollout_checks[0].command is missing (expected one line of text)",
        "b1: kernel_rollout_keep is -3 (expected a whole number, 1 to 100)",
        "b1: model_cache_dir is 'cache' (expected an absolute path)"]


def test_numbers_given_as_text_are_converted_as_ansible_does() -> None:
    assert validate_fleet({"b1": board(kernel_rollout_keep="3", kernel_build_ccache="yes")}, INPUTS) == []
    assert validate_fleet({"b1": board(kernel_rollout_keep="three")}, INPUTS) == [
        "b1: kernel_rollout_keep is a string 'three' (expected a whole number, 1 to 100)"]


def test_a_name_one_edit_from_a_known_one_is_refused() -> None:
    defined = {"b1": ["kernel_rolout_keep", "board_adress", "ansible_becom_password", "my_own_setting"]}
    problems = validate_fleet({"b1": board()}, INPUTS, defined)
    assert problems == [
        "b1: ansible_becom_password is not a variable of rosenblatt or Ansible: did you mean ansible_become_password?",
        "b1: board_adress is not a variable of rosenblatt or Ansible: did you mean board_address?",
        "b1: kernel_rolout_keep is not a variable of rosenblatt or Ansible: did you mean kernel_rollout_keep?"]
    assert one_edit_apart("abcd", "abdc") and one_edit_apart("abc", "abxc") and not one_edit_apart("abc", "cab")


def test_host_names() -> None:
    assert host_name_problems(["boltzmann", "b-2", "rack1.lab"]) == []
    assert host_name_problems(["bo\u0142tzmann"])[0].startswith("bo\u0142tzmann: the host name has non-ASCII "
                                                              "characters '\u0142' (U+0142 LATIN SMALL LETTER L")
    assert host_name_problems(["-bad"]) == ["-bad: the host name is not a host name (letters, digits and hyphens, "
                                            "labels of 1-63 characters separated by dots, not starting or ending "
                                            "with a hyphen)"]
    assert host_name_problems(["Boltzmann", "boltzmann", "board0", "boardo", "node1", "nodel"]) == [
        "Boltzmann, boltzmann: these host names differ only by case or look-alike characters: rename all but one",
        "board0, boardo: these host names differ only by case or look-alike characters: rename all but one",
        "node1, nodel: these host names differ only by case or look-alike characters: rename all but one"]


def test_a_secret_value_is_never_shown() -> None:
    problems = validate_fleet({"b1": board(board_address="hunter2 x")}, INPUTS, {"b1": ["ansible_become_pasword"]})
    assert "hunter2 x" in problems[0]  # an address is no secret
    assert shown("ansible_become_password", "hunter2") == "(a secret, not shown)"
    assert shown("vault_token", "hunter2") == shown("github_token", 1) == "(a secret, not shown)"
    assert shown("inference_verify_tokens", 24) == "24"


def test_a_renamed_variable_is_refused_naming_the_new_name() -> None:
    variables = board(rosenblatt_llama_cpp_tag=LLAMA_CPP_COMMIT)
    assert validate_fleet({"b1": variables}, INPUTS, {"b1": set(variables)}) == [
        "b1: rosenblatt_llama_cpp_tag was renamed rosenblatt_llama_cpp_ref: set rosenblatt_llama_cpp_ref instead"]
