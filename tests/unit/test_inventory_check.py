"""What only the inventory's files show, read the way Ansible reads them: pins outside group_vars/all,
groups of one host that disagree, empty groups, connection variables derived from a bad board address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_check import Outcome, check_sources
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import LLAMA_CPP_COMMIT

REPO = Path(__file__).resolve().parents[2]
BOARD = yaml.safe_load((REPO / "inventory/host_vars/boltzmann.yml").read_text())


def write(root: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return root


def _file_name(keyword: str) -> str:
    """group_vars__rk3588_yml is group_vars/rk3588.yml: keyword arguments cannot hold slashes and dots."""
    name = keyword.replace("__", "/")
    return name[:-4] + ".yml" if name.endswith("_yml") else name


def inventory(tmp_path: Path, hosts: dict[str, Any], **files: Any) -> Path:
    tree = {"all": {"children": {"rk3588": {"hosts": hosts}}}}
    return write(tmp_path / "inventory", {"hosts.yml": tree,
                                          "group_vars/all.yml": (REPO / "inventory/group_vars/all.yml").read_text(),
                                          **{_file_name(name): value for name, value in files.items()}})


def check(path: Path) -> Outcome:
    return check_sources([str(path)], REPO / "roles", REPO / "playbooks")


def board(address: str, **overrides: Any) -> dict[str, Any]:
    return {**BOARD, "board_address": address, "board_shared": False, **overrides}


def test_a_clean_inventory_passes(tmp_path: Path) -> None:
    outcome = check(inventory(tmp_path, {"b1": board("192.0.2.1"), "b2": board("192.0.2.2")}))
    assert outcome.problems == [] and outcome.warnings == []


def test_a_pin_in_a_group_file_names_both_files(tmp_path: Path) -> None:
    path = inventory(tmp_path, {"b1": board("192.0.2.1")},
                     group_vars__rk3588__pins={"rosenblatt_llama_cpp_ref": LLAMA_CPP_COMMIT})
    assert check(path).problems == [
        "rosenblatt_llama_cpp_ref is a pin and is also set in group_vars/rk3588/pins (for group rk3588), which would "
        "win over group_vars/all.yml: pins live only in group_vars/all; remove it from group_vars/rk3588/pins"]


def test_a_pin_in_host_vars_or_inline_is_refused(tmp_path: Path) -> None:
    path = inventory(tmp_path, {"b1": board("192.0.2.1", rosenblatt_model_sha256="a" * 64)},
                     host_vars__b1_yml={"rosenblatt_kernel_tag": "v7.2.13"})
    problems = check(path).problems
    assert [problem.split(" (for ")[0] for problem in problems] == [
        "rosenblatt_model_sha256 is a pin and is also set in the inventory file",
        "rosenblatt_kernel_tag is a pin and is also set in host_vars/b1.yml"]


def test_groups_of_one_host_that_disagree(tmp_path: Path) -> None:
    path = inventory(tmp_path, {"b1": board("192.0.2.1")})
    tree = yaml.safe_load((path / "hosts.yml").read_text())
    tree["all"]["children"].update(lab={"hosts": {"b1": None}}, east={"hosts": {"b1": None}},
                                   spare={"hosts": {}})
    tree["all"]["children"]["rk3588"]["children"] = {"rk3588_nvme": {"hosts": {"b1": None}}}
    write(path, {"hosts.yml": tree, "group_vars/lab.yml": {"inference_verify_nice": 5},
                 "group_vars/east.yml": {"inference_verify_nice": 7},
                 # a child group overriding its parent is Ansible's rule, not a conflict
                 "group_vars/rk3588.yml": {"inference_verify_tokens": 8},
                 "group_vars/rk3588_nvme.yml": {"inference_verify_tokens": 16}})
    outcome = check(path)
    assert outcome.problems == [
        "b1: inference_verify_nice is set differently by groups east (group_vars/east.yml) and lab "
        "(group_vars/lab.yml), and neither group is inside the other: Ansible would pick lab by name; set it in "
        "one place"]
    assert outcome.warnings == ["group spare has no hosts"]


def test_a_bad_port_is_reported_as_itself_not_as_ansible_port(tmp_path: Path) -> None:
    outcome = check(inventory(tmp_path, {"b1": board("192.0.2.1", board_port="twenty-two")}))
    assert outcome.problems == ["b1: board_port is a string 'twenty-two' (expected a TCP port, 1 to 65535)"]


def test_a_connection_variable_set_directly_is_checked(tmp_path: Path) -> None:
    outcome = check(inventory(tmp_path, {"b1": board("192.0.2.1", ansible_port="ssh")}))
    assert outcome.problems == ["b1: ansible_port is 'ssh' (expected a TCP port, 1 to 65535)"]


def test_a_misspelt_variable_in_a_group_file(tmp_path: Path) -> None:
    outcome = check(inventory(tmp_path, {"b1": board("192.0.2.1")},
                              group_vars__rk3588_yml={"kernel_rollout_min_verdcit": "ready"}))
    assert outcome.problems == ["b1: kernel_rollout_min_verdcit is not a variable of rosenblatt or Ansible: did you "
                                "mean kernel_rollout_min_verdict?"]
