# Copyright: rosenblatt developers
# MIT License
"""What every host of the fleet must declare, checked before any task touches a host.

Used by the `validate_inventory` action plugin (first play of every stage) and by the
`rosenblatt` CLI before it writes an inventory file. Every problem names the host, the
variable and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Board models the pipeline knows how to build for, with their SoC.
BOARD_MODELS: dict[str, str] = {
    "radxa-rock-5-itx-plus": "rk3588",
    "radxa-rock-5-itx": "rk3588",
    "radxa-rock-5b": "rk3588",
    "qemu-virt-arm64": "qemu-virt",  # the virtual board: same image, other firmware and DTB
    "generic-linux": "none",  # stand-in hosts (the controller in `make demo`, fleet test hosts)
}
BOOT_MEDIA = ("emmc", "nvme", "sd", "sata", "usb", "spi-nor", "virtio", "none")
BOOT_CHAINS = ("uefi-grub", "uefi-systemd-boot", "uboot-extlinux", "uboot-script", "none")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?)*\.?$")


def _is_address(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        # A name made only of digits and dots is a malformed IPv4 address, not a host name.
        return not re.fullmatch(r"[0-9.]+", value) and bool(HOSTNAME.match(value))


def _network_ok(value: dict) -> bool:
    if value.get("mode") == "dhcp":
        return True
    try:
        ipaddress.ip_interface(value.get("address"))
    except ValueError:
        return False
    return value.get("mode") == "static" and "/" in str(value.get("address"))


def _flash_ok(value: dict) -> bool:
    size = value.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return False
    if value.get("method") == "block-device":
        return str(value.get("device", "")).startswith("/dev/")
    return value.get("method") == "rkdeveloptool" and str(value.get("loader", "")).startswith("/")


def _is_url_or_path(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"^(https?://[^\s/]+/\S+|file:///\S+|/\S+)$", value))


@dataclass(frozen=True)
class Field:
    """One variable: its Python type, whether it must be set, and an extra check with its wording."""

    type: type | tuple[type, ...]
    expected: str
    required: bool = True
    check: Callable[[Any], bool] | None = None


HOST_FIELDS: dict[str, Field] = {
    "board_model": Field(str, "one of " + ", ".join(BOARD_MODELS), check=lambda v: v in BOARD_MODELS),
    "board_soc": Field(str, "the SoC of board_model"),
    "board_ram_gib": Field(int, "a whole number of GiB, 1 to 1024", check=lambda v: 1 <= v <= 1024),
    "board_boot_media": Field(str, "one of " + ", ".join(BOOT_MEDIA), check=lambda v: v in BOOT_MEDIA),
    "board_boot_chain": Field(str, "one of " + ", ".join(BOOT_CHAINS), check=lambda v: v in BOOT_CHAINS),
    "board_distribution": Field(str, "a distribution id such as bredos or debian", check=lambda v: bool(v.strip())),
    "board_address": Field(str, "a host name or an IP address", check=_is_address),
    "board_port": Field(int, "a TCP port, 1 to 65535", required=False, check=lambda v: 1 <= v <= 65535),
    "board_shared": Field(bool, "true or false: whether the board serves other work"),
    "board_serial_console": Field((dict, type(None)), "null or {device: /dev/..., baud: N}", required=False,
                                  check=lambda v: v is None or (isinstance(v.get("device"), str)
                                                                and isinstance(v.get("baud"), int))),
    "board_network": Field(dict, "{mode: dhcp} or {mode: static, address: a.b.c.d/prefix, gateway: ..., dns: [...]}",
                           required=False, check=_network_ok),
    "board_flash": Field(dict, "{method: block-device, device: /dev/..., size_bytes: N, serial: ..., model: ...} or "
                         "{method: rkdeveloptool, loader: /path/to/loader.bin, size_bytes: N}",
                         required=False, check=_flash_ok),
    "rosenblatt_kernel_tag": Field(str, "a kernel tag such as v7.2.13",
                                   check=lambda v: bool(re.match(r"^v\d+\.\d+", v))),
    "rosenblatt_llama_cpp_tag": Field(str, "a llama.cpp tag such as b7000", check=lambda v: bool(v.strip())),
    "rosenblatt_model_url": Field(str, "an http(s):// URL, file:/// URL or absolute path", check=_is_url_or_path),
    "rosenblatt_model_sha256": Field(str, "64 lowercase hex digits", check=lambda v: bool(SHA256.match(v))),
}


def _type_name(value: Any) -> str:
    # isinstance, not type(): Ansible hands over tagged subclasses of str, int, dict and list.
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (dict, "mapping"), (list, "list"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _type_ok(value: Any, expected: type | tuple[type, ...]) -> bool:
    # YAML true is an int in Python: a boolean never passes for an integer field.
    if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
        return False
    return isinstance(value, expected)


def validate_host(host: str, variables: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, field in HOST_FIELDS.items():
        if name not in variables:
            if field.required:
                problems.append("%s: %s is missing (expected %s)" % (host, name, field.expected))
            continue
        value = variables[name]
        if not _type_ok(value, field.type):
            problems.append("%s: %s is a %s %r (expected %s)" % (host, name, _type_name(value), value, field.expected))
        elif field.check and not field.check(value):
            problems.append("%s: %s is %r (expected %s)" % (host, name, value, field.expected))
    model, soc = variables.get("board_model"), variables.get("board_soc")
    if model in BOARD_MODELS and isinstance(soc, str) and soc != BOARD_MODELS[model]:
        problems.append("%s: board_soc is %r but board_model %s has SoC %r" % (host, soc, model, BOARD_MODELS[model]))
    return problems


def validate_fleet(hosts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """All problems of all hosts, then addresses used by more than one host."""
    problems = []
    endpoints: dict[tuple[str, int], list[str]] = {}
    for host in sorted(hosts):
        variables = hosts[host]
        problems.extend(validate_host(host, variables))
        address, port = variables.get("board_address"), variables.get("board_port", 22)
        if isinstance(address, str) and isinstance(port, int):
            endpoints.setdefault((address.lower(), port), []).append(host)
    for (address, port), names in sorted(endpoints.items()):
        if len(names) > 1:
            problems.append("%s: board_address %s port %d is used by more than one host"
                            % (", ".join(names), address, port))
    return problems


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
