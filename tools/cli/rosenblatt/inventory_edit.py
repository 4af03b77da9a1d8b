"""`rosenblatt board add/remove`: edit the inventory as a person would, checked before anything is written.

The edit is made on a copy of the inventory folder, the copy is loaded by Ansible itself and checked
with the same rules as the `validate` stage, and only then are the changed files moved into place, each
by an atomic rename. A board is added host_vars first, hosts.yml second, and removed in the opposite
order, so an interruption between the two leaves a valid inventory (Ansible ignores host_vars of hosts it
does not list). Comments, order and layout of hosts.yml are kept (ruamel.yaml round trip).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from rosenblatt.project import project_dir


class InventoryError(Exception):
    """A refused edit; the message names the bad value. Nothing was written."""


@dataclass(frozen=True)
class NewBoard:
    name: str
    address: str
    model: str
    ram_gib: int
    boot_media: str
    boot_chain: str
    distribution: str
    shared: bool
    port: int | None = None


def _round_trip_yaml() -> YAML:
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _load_hosts(path: Path) -> tuple[YAML, Any, str]:
    text = path.read_text()
    yaml = _round_trip_yaml()
    yaml.explicit_start = text.lstrip().startswith("---")
    return yaml, yaml.load(text), text


def _dump(yaml: YAML, data: Any) -> str:
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _groups_listing(tree: Any, name: str, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (group path, hosts mapping) of the YAML inventory tree that lists host `name`."""
    found = []
    if not isinstance(tree, Mapping):
        return found
    for group, body in tree.items():
        if not isinstance(body, Mapping):
            continue
        hosts = body.get("hosts")
        if isinstance(hosts, Mapping) and name in hosts:
            found.append(((*path, group), hosts))
        found.extend(_groups_listing(body.get("children"), name, (*path, group)))
    return found


def _find_group(tree: Any, group: str) -> Any:
    if not isinstance(tree, Mapping):
        return None
    for name, body in tree.items():
        if name == group:
            return body
        if isinstance(body, Mapping):
            inner = _find_group(body.get("children"), group)
            if inner is not None:
                return inner
    return None


def inventory_problems(inventory: Path) -> list[str]:
    """Load `inventory` with Ansible and check every host with the validate stage's rules."""
    from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_check import (  # noqa: PLC0415
        check_sources,
    )

    return check_sources([str(inventory)], project_dir() / "roles", project_dir() / "playbooks").problems


def host_names(inventory: Path) -> list[str]:
    from ansible.inventory.manager import InventoryManager  # noqa: PLC0415
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415

    return sorted(host.name for host in InventoryManager(loader=DataLoader(), sources=[str(inventory)]).get_hosts())


def _host_vars_text(board: NewBoard, soc: str) -> str:
    data = CommentedMap()
    data["board_model"] = board.model
    data["board_soc"] = soc
    data["board_ram_gib"] = board.ram_gib
    data["board_boot_media"] = board.boot_media
    data["board_boot_chain"] = board.boot_chain
    data["board_distribution"] = board.distribution
    data["board_address"] = board.address
    if board.port is not None:
        data["board_port"] = board.port
    data["board_shared"] = board.shared
    yaml = _round_trip_yaml()
    yaml.explicit_start = True
    return f"# {board.name}: {board.model}, added with `rosenblatt board add`.\n" + _dump(yaml, data)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_on_a_copy(inventory: Path, changes: Mapping[str, str | None]) -> list[str]:
    """Problems the edit would add: `changes` maps a path relative to the inventory to its new text (None: removed)."""
    before = inventory_problems(inventory)
    with tempfile.TemporaryDirectory(prefix="rosenblatt-inventory-") as scratch:
        copy = Path(scratch) / "inventory"
        shutil.copytree(inventory, copy, symlinks=True)
        for relative, text in changes.items():
            target = copy / relative
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        after = inventory_problems(copy)
    return [problem for problem in after if problem not in before]


def add_board(inventory: Path, board: NewBoard, group: str) -> dict[str, Any]:
    from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_schema import (  # noqa: PLC0415
        BOARD_MODELS,
    )
    from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import is_host_name  # noqa: PLC0415

    if not is_host_name(board.name) or "." in board.name:
        raise InventoryError(f"board name {board.name!r} is not a valid host name (letters, digits and '-')")
    if board.name in host_names(inventory):
        raise InventoryError(f"board {board.name!r} is already in {inventory}")
    if board.model not in BOARD_MODELS:
        raise InventoryError(f"board model {board.model!r} is unknown (expected one of {', '.join(BOARD_MODELS)})")
    hosts_file = inventory / "hosts.yml"
    yaml, tree, _ = _load_hosts(hosts_file)
    body = _find_group(tree.get("all", {}).get("children"), group) if isinstance(tree, Mapping) else None
    if body is None:
        raise InventoryError(f"group {group!r} is not in {hosts_file}")
    if body.get("hosts") is None:
        body["hosts"] = CommentedMap()
    body["hosts"][board.name] = None
    host_vars = Path("host_vars") / f"{board.name}.yml"
    if (inventory / host_vars).exists():
        raise InventoryError(f"{inventory / host_vars} already exists: remove it or pick another name")
    changes = {str(host_vars): _host_vars_text(board, BOARD_MODELS[board.model]), "hosts.yml": _dump(yaml, tree)}
    problems = _check_on_a_copy(inventory, changes)
    if problems:
        raise InventoryError("refused, the inventory would not be valid: " + "; ".join(problems))
    _write_atomically(inventory / host_vars, changes[str(host_vars)])
    _write_atomically(hosts_file, changes["hosts.yml"])
    return {"board": board.name, "group": group, "written": [str(inventory / host_vars), str(hosts_file)]}


def remove_board(inventory: Path, name: str) -> dict[str, Any]:
    hosts_file = inventory / "hosts.yml"
    yaml, tree, _ = _load_hosts(hosts_file)
    listings = _groups_listing(tree, name)
    if not listings:
        known = ", ".join(host_names(inventory)) or "none"
        raise InventoryError(f"board {name!r} is not in {hosts_file} (boards: {known})")
    for _, hosts in listings:
        del hosts[name]
    host_vars = inventory / "host_vars" / f"{name}.yml"
    removed = [host_vars] if host_vars.exists() else []
    changes: dict[str, str | None] = {"hosts.yml": _dump(yaml, tree)}
    changes.update({str(path.relative_to(inventory)): None for path in removed})
    problems = _check_on_a_copy(inventory, changes)
    if problems:
        raise InventoryError("refused, the inventory would not be valid: " + "; ".join(problems))
    _write_atomically(hosts_file, changes["hosts.yml"])
    for path in removed:
        path.unlink()
    return {"board": name, "groups": ["/".join(path) for path, _ in listings],
            "written": [str(hosts_file)], "removed": [str(path) for path in removed]}
