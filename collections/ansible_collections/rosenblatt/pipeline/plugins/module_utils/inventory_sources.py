# Copyright: rosenblatt developers
# MIT License
"""Where each inventory variable is written: which file, for which group or host.

Ansible merges an inventory into one value per host and variable and forgets where each came from;
the inventory check needs the origin to say "this pin is also set in group_vars/rk3588.yml" or "these two
groups of one host disagree". This reads the same places Ansible's host_group_vars plugin reads, next to
each inventory source and next to the playbook: group_vars/<group>[.yml|.yaml|.json] or a folder of such
files, host_vars/<host> likewise, plus the variables written inline in the inventory file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


@dataclass(frozen=True)
class Definition:
    """One variable written once: in `file` (as the user sees it), for group or host `owner`."""

    name: str
    value: Any
    file: str
    owner: str
    is_group: bool


@dataclass(frozen=True)
class Group:
    """What the check needs of an inventory group: its hosts (its own and its children's) and its ancestors."""

    name: str
    hosts: tuple[str, ...]
    ancestors: tuple[str, ...]
    inline_vars: Mapping[str, Any]


def _vars_files(folder: Path, owner: str) -> list[Path]:
    found = [folder / (owner + ext) for ext in VARS_EXTENSIONS if (folder / (owner + ext)).is_file()]
    below = folder / owner
    if below.is_dir():
        found.extend(sorted(path for path in below.rglob("*")
                            if path.is_file() and path.suffix in VARS_EXTENSIONS and not path.name.startswith(".")))
    return found


def _shown(path: Path, bases: Iterable[Path]) -> str:
    for base in bases:
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def definitions(bases: Iterable[Path], groups: Iterable[Group], hosts: Mapping[str, Mapping[str, Any]],
                load: Callable[[Path], Any], inventory_file: str = "the inventory file") -> list[Definition]:
    """Every variable the inventory writes, file by file. `load` reads one vars file (vault and all)."""
    bases = [base for base in dict.fromkeys(bases) if base.is_dir()]
    found: list[Definition] = []
    groups = list(groups)
    for group in groups:
        found.extend(Definition(name, value, inventory_file, group.name, True)
                     for name, value in group.inline_vars.items())
    for host, inline in hosts.items():
        found.extend(Definition(name, value, inventory_file, host, False) for name, value in inline.items())
    for base in bases:
        for kind, owners in (("group_vars", [group.name for group in groups]), ("host_vars", list(hosts))):
            for owner in owners:
                for path in _vars_files(base / kind, owner):
                    document = load(path)
                    if isinstance(document, Mapping):
                        found.extend(Definition(str(name), value, _shown(path, bases), owner, kind == "group_vars")
                                     for name, value in document.items())
    return found


def sibling_conflicts(definitions_: Iterable[Definition], groups: Iterable[Group]) -> list[str]:
    """Variables that two groups of one host set to different values where neither group is inside the other.

    Ansible then takes the group whose name sorts last (or the higher ansible_group_priority): a choice
    nobody wrote down, so it is reported with both files.
    """
    by_group: dict[str, dict[str, Definition]] = {}
    for item in definitions_:
        if item.is_group:
            by_group.setdefault(item.owner, {})[item.name] = item
    groups = {group.name: group for group in groups}
    problems = []
    seen: set[tuple[str, str, str]] = set()
    for host in sorted({host for group in groups.values() for host in group.hosts}):
        mine = sorted(name for name, group in groups.items() if host in group.hosts and name in by_group)
        for index, first in enumerate(mine):
            for second in mine[index + 1:]:
                if first in groups[second].ancestors or second in groups[first].ancestors:
                    continue
                for name in sorted(set(by_group[first]) & set(by_group[second])):
                    a, b = by_group[first][name], by_group[second][name]
                    if a.value != b.value and (first, second, name) not in seen:
                        seen.add((first, second, name))
                        problems.append("%s: %s is set differently by groups %s (%s) and %s (%s), and neither "
                                        "group is inside the other: Ansible would pick %s by name; set it in one "
                                        "place" % (host, name, first, a.file, second, b.file, second))
    return problems


def misplaced(definitions_: Iterable[Definition], names: Iterable[str], home_group: str = "all") -> list[str]:
    """Definitions of `names` anywhere but the home group's files, each named with the home file."""
    names = set(names)
    items = [item for item in definitions_ if item.name in names]
    home = {item.name: item.file for item in items if item.is_group and item.owner == home_group}
    return ["%s is a pin and is also set in %s (for %s %s), which would win over %s: pins live only in "
            "group_vars/%s; remove it from %s" % (item.name, item.file, "group" if item.is_group else "host",
                                                   item.owner, home.get(item.name, "group_vars/all"), home_group,
                                                   item.file)
            for item in items if not (item.is_group and item.owner == home_group)]


def empty_groups(groups: Iterable[Group]) -> list[str]:
    return sorted(group.name for group in groups if not group.hosts and group.name not in ("all", "ungrouped"))
