# Copyright: rosenblatt developers
# MIT License
"""Everything a user can set in an inventory, checked before any task touches a host.

Used by the `validate_inventory` action plugin (first play of every stage) and by the `rosenblatt` CLI
before it writes an inventory file. Four kinds of variable, each described once:
- the board description (BOARD_FIELDS, here), which every host must declare;
- the pins (PIN_FIELDS, here), which live only in group_vars/all;
- the project's own variables that no role owns (PROJECT_FIELDS, here);
- every role input, from the roles' meta/argument_specs.yml (module_utils/role_inputs.py).
Every problem names the host, the variable as the user wrote it, the value and what is allowed; a
secret's value is never shown.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import boot_chains
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boards import BOARDS
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_sources import (
    Definition,
    Group,
    empty_groups,
    misplaced,
    sibling_conflicts,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import VERDICTS
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import (
    SHA256,
    Input,
    input_problems,
    is_address,
    is_host_name,
    shown,
    type_name,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import untested_pin_problems

# Board models the pipeline knows how to build for (the board catalogue), with their SoC.
BOARD_MODELS: dict[str, str] = {model: entry["soc"] for model, entry in BOARDS.items()}
BOOT_MEDIA = ("emmc", "nvme", "sd", "sata", "usb", "spi-nor", "virtio", "none")
# The chains the boot chain descriptors support, and the stand-in without one.
BOOT_CHAINS = (*boot_chains.BOOT_CHAINS, boot_chains.NO_BOOT_CHAIN)
SERIAL_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000, 1500000, 2000000, 3000000)
COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Field:
    """One variable: its Python type, whether it must be set, and an extra check with its wording."""

    type: type | tuple[type, ...]
    expected: str
    required: bool = True
    check: Callable[[Any], bool] | None = None


def _device_path(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"/dev/[^\s]+", value)) and ".." not in value.split("/")


def _network_ok(value: Mapping[str, Any]) -> bool:
    if value.get("mode") == "dhcp":
        return set(value) == {"mode"}
    if value.get("mode") != "static" or not set(value) <= {"mode", "address", "gateway", "dns"}:
        return False
    try:
        interface = ipaddress.ip_interface(str(value.get("address")))
        gateway = ipaddress.ip_address(str(value["gateway"])) if "gateway" in value else None
        dns = value.get("dns", [])
        servers = [ipaddress.ip_address(str(server)) for server in dns] if isinstance(dns, list) else None
    except ValueError:
        return False
    return ("/" in str(value.get("address")) and servers is not None
            and interface.ip != interface.network.network_address
            and (gateway is None or (gateway in interface.network and gateway != interface.ip)))


def _whole_number(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _flash_ok(value: Mapping[str, Any]) -> bool:
    if not _whole_number(value.get("size_bytes"), 1, 1 << 50):
        return False
    if value.get("method") == "block-device":
        return _device_path(value.get("device")) and set(value) <= {"method", "device", "size_bytes", "serial", "model"}
    loader = value.get("loader")
    return (value.get("method") == "rkdeveloptool" and isinstance(loader, str) and loader.startswith("/")
            and ".." not in loader.split("/") and set(value) <= {"method", "loader", "size_bytes"})


def _serial_ok(value: Mapping[str, Any] | None) -> bool:
    return value is None or (set(value) == {"device", "baud"} and _device_path(value.get("device"))
                             and value.get("baud") in SERIAL_BAUDS)


def _git_url(value: str) -> bool:
    # Transport integrity: https or a local repository; plain http and git:// can be altered on the way.
    return bool(re.fullmatch(r"(https://[^/\s]+/\S+|file:///\S+|/\S+)", value)) and ".." not in value.split("/")


BOARD_FIELDS: dict[str, Field] = {
    "board_model": Field(str, "one of " + ", ".join(BOARD_MODELS), check=lambda v: v in BOARD_MODELS),
    "board_soc": Field(str, "the SoC of board_model"),
    "board_ram_gib": Field(int, "a whole number of GiB, 1 to 1024", check=lambda v: 1 <= v <= 1024),
    "board_boot_media": Field(str, "one of " + ", ".join(BOOT_MEDIA), check=lambda v: v in BOOT_MEDIA),
    "board_boot_chain": Field(str, "one of " + ", ".join(BOOT_CHAINS), check=lambda v: v in BOOT_CHAINS),
    "board_distribution": Field(str, "a distribution id such as bredos or debian (os-release ID: a-z, 0-9, . _ -)",
                                check=lambda v: bool(re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v))),
    "board_address": Field(str, "a host name or an IP address", check=is_address),
    "board_port": Field(int, "a TCP port, 1 to 65535", required=False, check=lambda v: 1 <= v <= 65535),
    "board_shared": Field(bool, "true or false: whether the board serves other work"),
    "board_serial_console": Field((dict, type(None)), "null or {device: /dev/..., baud: one of %s}"
                                  % ", ".join(map(str, SERIAL_BAUDS)), required=False, check=_serial_ok),
    "board_network": Field(dict, "{mode: dhcp} or {mode: static, address: a.b.c.d/prefix, gateway: an address in "
                           "that network, dns: [addresses]}", required=False, check=_network_ok),
    "board_flash": Field(dict, "{method: block-device, device: /dev/..., size_bytes: N, serial: ..., model: ...} or "
                         "{method: rkdeveloptool, loader: /path/to/loader.bin, size_bytes: N}",
                         required=False, check=_flash_ok),
}

# Pins: every version the pipeline uses; only in group_vars/all (README). A git pin that names a tag
# rather than a commit is accepted only when rosenblatt_tag_pins lists it: a tag can be moved.
TAG_PINS = ("rosenblatt_kernel_tag", "rosenblatt_llama_cpp_ref")
PIN_FIELDS: dict[str, Field] = {
    "rosenblatt_kernel_tag": Field(str, "a kernel tag such as v7.2.13, or a 40-digit commit",
                                   check=lambda v: bool(re.fullmatch(r"v\d+\.\d+(\.\d+)?(-rc\d+)?", v)
                                                        or COMMIT.fullmatch(v))),
    "rosenblatt_kernel_git_url": Field(str, "an https:// or file:/// URL, or an absolute path", required=False,
                                       check=_git_url),
    "rosenblatt_llama_cpp_ref": Field(str, "a llama.cpp tag such as b7000, or a 40-digit commit",
                                      check=lambda v: bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}", v))),
    "rosenblatt_llama_cpp_git_url": Field(str, "an https:// or file:/// URL, or an absolute path", required=False,
                                          check=_git_url),
    "rosenblatt_model_url": Field(str, "an http(s):// URL, file:/// URL or absolute path (the sha256 pin checks it)",
                                  check=lambda v: bool(re.fullmatch(r"(https?://[^\s/]+/\S+|file:///\S+|/\S+)", v))),
    "rosenblatt_model_sha256": Field(str, "64 lowercase hex digits", check=lambda v: bool(SHA256.fullmatch(v))),
    "rosenblatt_tag_pins": Field(list, "a list of the tag pins accepted knowingly (%s)" % ", ".join(TAG_PINS),
                                 required=False, check=lambda v: all(name in TAG_PINS for name in v)),
}

# Variables that were renamed: an inventory still setting the old name is refused with the new one.
RENAMED = {
    "rosenblatt_llama_cpp_tag": "rosenblatt_llama_cpp_ref",  # it holds a commit (or a tag)
    "runtime_build_git_tag": "runtime_build_git_ref",
}


def _absolute(value: str) -> bool:
    return value.startswith("/") and ".." not in value.split("/") and "\n" not in value


# The project's variables that no role declares: playbooks and group_vars read them.
PROJECT_FIELDS: dict[str, Field] = {
    "rosenblatt_state_dir": Field(str, "an absolute path", required=False, check=_absolute),
    "rosenblatt_reports_dir": Field(str, "an absolute path", required=False, check=_absolute),
    "rosenblatt_cache": Field(str, "an absolute path", required=False, check=_absolute),
    "rosenblatt_confirm": Field((str, list), "board names, comma-separated", required=False),
    "rosenblatt_perplexity_bound": Field((float, int), "a fraction, 0 to 1", required=False,
                                         check=lambda v: not isinstance(v, bool) and 0 <= v <= 1),
    "rosenblatt_stage_changes_boards": Field((bool, str), "true or false", required=False,
                                             check=lambda v: str(v).lower() in ("true", "false", "yes", "no")),
    "rollout_canary": Field(str, "a host of the inventory or empty", required=False),
    "rollout_batch": Field((str, int), "a host count (e.g. 2) or a percentage from 1% to 100%", required=False,
                           check=lambda v: bool(re.fullmatch(r"[1-9]\d*%?", str(v)))
                           and (not str(v).endswith("%") or int(str(v)[:-1]) <= 100)),
    "rollout_max_fail_percentage": Field(int, "a percentage, 0 to 100", required=False,
                                         check=lambda v: 0 <= v <= 100),
}
ALL_FIELDS: dict[str, Field] = {**BOARD_FIELDS, **PIN_FIELDS, **PROJECT_FIELDS}

# Ansible's own variables a user writes in an inventory (connection and privilege escalation), for "did you mean".
ANSIBLE_VARIABLES = (
    "ansible_host", "ansible_port", "ansible_user", "ansible_connection", "ansible_password", "ansible_ssh_pass",
    "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_ssh_common_args", "ansible_ssh_extra_args",
    "ansible_scp_extra_args", "ansible_sftp_extra_args", "ansible_ssh_executable", "ansible_ssh_pipelining",
    "ansible_pipelining", "ansible_python_interpreter", "ansible_shell_type", "ansible_shell_executable",
    "ansible_become", "ansible_become_method", "ansible_become_user", "ansible_become_password",
    "ansible_become_pass", "ansible_become_exe", "ansible_become_flags", "ansible_timeout", "ansible_group_priority",
)


def _is_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    # YAML true is an int in Python: a boolean never passes for an integer field.
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def _field_problems(host: str, name: str, field: Field, value: Any) -> list[str]:
    if not _is_type(value, field.type):
        return ["%s: %s is a %s %s (expected %s)" % (host, name, type_name(value), shown(name, value), field.expected)]
    if field.check and not field.check(value):
        return ["%s: %s is %s (expected %s)" % (host, name, shown(name, value), field.expected)]
    return []


def one_edit_apart(first: str, second: str) -> bool:
    """Damerau-Levenshtein distance 1: one letter inserted, removed, changed, or two neighbours swapped."""
    if first == second or abs(len(first) - len(second)) > 1:
        return False
    if len(first) == len(second):
        diffs = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
        return len(diffs) == 1 or (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                                   and first[diffs[0]] == second[diffs[1]] and first[diffs[1]] == second[diffs[0]])
    short, long_ = sorted((first, second), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def suggestion(name: str, known: Iterable[str]) -> str | None:
    matches = sorted(candidate for candidate in known if one_edit_apart(name, candidate))
    return matches[0] if matches else None


# ASCII letters a reader cannot tell apart in a terminal font, folded together to compare host names.
CONFUSABLE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l"})


def _skeleton(name: str) -> str:
    return name.lower().translate(CONFUSABLE).replace("rn", "m").replace("vv", "w")


def host_name_problems(hosts: Iterable[str]) -> list[str]:
    """Inventory host names: hostname rules in ASCII, and no two that a person would read as one."""
    problems = []
    names = sorted(hosts)
    for host in names:
        odd = [char for char in host if not char.isascii()]
        if odd:
            problems.append("%s: the host name has non-ASCII characters %s: use the ASCII letters, digits and hyphens "
                            "of a host name" % (host, ", ".join("%r (U+%04X %s)" % (c, ord(c), unicodedata.name(c, "?"))
                                                                for c in dict.fromkeys(odd))))
        elif not is_host_name(host) or host.endswith("."):
            problems.append("%s: the host name is not a host name (letters, digits and hyphens, labels of 1-63 "
                            "characters separated by dots, not starting or ending with a hyphen)" % host)
    by_skeleton: dict[str, list[str]] = {}
    for host in names:
        by_skeleton.setdefault(_skeleton(host), []).append(host)
    for same in by_skeleton.values():
        if len(same) > 1:
            problems.append("%s: these host names differ only by case or look-alike characters: rename all but one"
                            % ", ".join(same))
    return problems


def validate_host(host: str, variables: Mapping[str, Any], inputs: Mapping[str, Input] | None = None,
                  context: Mapping[str, Any] | None = None, defined: Iterable[str] = ()) -> list[str]:
    """One host's problems: its board description, pins, project variables, role inputs and misspelt names."""
    defined = set(defined)
    problems = []
    for name, field in ALL_FIELDS.items():
        if name in variables:
            problems.extend(_field_problems(host, name, field, variables[name]))
        elif field.required:
            problems.append("%s: %s is missing (expected %s)" % (host, name, field.expected))
    model, soc = variables.get("board_model"), variables.get("board_soc")
    if isinstance(model, str) and model in BOARD_MODELS and isinstance(soc, str) and soc != BOARD_MODELS[model]:
        problems.append("%s: board_soc is %r but board_model %s has SoC %r" % (host, soc, model, BOARD_MODELS[model]))
    accepted = variables.get("rosenblatt_tag_pins", [])
    for name in TAG_PINS:
        value = variables.get(name)
        if isinstance(value, str) and not COMMIT.fullmatch(value) and isinstance(accepted, list) \
                and name not in accepted:
            problems.append("%s: %s is the tag %r, not a commit: a tag can be moved; pin the 40-digit commit, or list "
                            "%s in rosenblatt_tag_pins (group_vars/all) to accept the tag knowingly"
                            % (host, name, value, name))
    problems.extend(untested_pin_problems(host, dict(variables)))
    problems.extend("%s: %s was renamed %s: set %s instead" % (host, old, new, new)
                    for old, new in RENAMED.items() if old in variables or old in defined)
    inputs = inputs or {}
    context = {"verdicts": tuple(VERDICTS), **(context or {})}
    for name, spec in inputs.items():
        if name in variables and name not in ALL_FIELDS:
            problems.extend("%s: %s" % (host, problem)
                            for problem in input_problems(name, spec, variables[name], context, suggestion))
    known = set(ALL_FIELDS) | set(inputs) | set(ANSIBLE_VARIABLES) | set(RENAMED)
    for name in sorted(set(defined) - known):
        hint = suggestion(name, known)
        if hint:
            problems.append("%s: %s is not a variable of rosenblatt or Ansible: did you mean %s?" % (host, name, hint))
    return problems


def validate_fleet(hosts: Mapping[str, Mapping[str, Any]], inputs: Mapping[str, Input] | None = None,
                   defined: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """All problems of all hosts, then host names and addresses that more than one host uses."""
    problems = host_name_problems(hosts)
    endpoints: dict[tuple[str, int], list[str]] = {}
    context = {"hosts": tuple(hosts)}
    for host in sorted(hosts):
        variables = hosts[host]
        problems.extend(validate_host(host, variables, inputs, context, (defined or {}).get(host, ())))
        address, port = variables.get("board_address"), variables.get("board_port", 22)
        if isinstance(address, str) and isinstance(port, int):
            endpoints.setdefault((address.lower().rstrip("."), port), []).append(host)
    for (address, port), names in sorted(endpoints.items()):
        if len(names) > 1:
            problems.append("%s: board_address %s port %d is used by more than one host"
                            % (", ".join(names), address, port))
    return problems


def connection_problems(host: str, variables: Mapping[str, Any]) -> list[str]:
    """ansible_host and ansible_port as Ansible will use them: checked only once the board description passed,
    since group_vars/all derives them from board_address and board_port (whose own message is clearer)."""
    problems = []
    address, port = variables.get("ansible_host"), variables.get("ansible_port")
    if address is not None and not (isinstance(address, str) and is_address(address)):
        problems.append("%s: ansible_host is %s (expected a host name or an IP address)" % (host, shown("", address)))
    if port is not None and not (str(port).isdigit() and 1 <= int(str(port)) <= 65535):
        problems.append("%s: ansible_port is %s (expected a TCP port, 1 to 65535)" % (host, shown("", port)))
    return problems


def inventory_problems(definitions: Iterable[Definition], groups: Iterable[Group]) -> tuple[list[str], list[str]]:
    """What only the inventory's files show: pins outside group_vars/all, groups that disagree; empty groups warned."""
    definitions, groups = list(definitions), list(groups)
    problems = misplaced(definitions, PIN_FIELDS) + sibling_conflicts(definitions, groups)
    warnings = ["group %s has no hosts" % name for name in empty_groups(groups)]
    return problems, warnings


def confirmation_problems(hosts: Mapping[str, Mapping[str, Any]], confirmed: Any) -> list[str]:
    """Shared boards (board_shared: true) are changed only when this run names them in rosenblatt_confirm."""
    if isinstance(confirmed, str):
        names = {name.strip() for name in confirmed.split(",") if name.strip()}
    elif isinstance(confirmed, (list, tuple)):
        names = {str(name) for name in confirmed}
    else:
        names = set()
    return ["%s: board_shared is true and this stage changes the board: re-run with -e rosenblatt_confirm=%s "
            "to confirm for this run" % (host, host)
            for host in sorted(hosts) if hosts[host].get("board_shared") is True and host not in names]
