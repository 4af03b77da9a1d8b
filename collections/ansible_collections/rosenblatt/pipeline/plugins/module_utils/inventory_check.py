# Copyright: rosenblatt developers
# MIT License
"""The whole inventory check on the controller: Ansible's view of each host plus where each value is written.

One function for the two callers, the `validate_inventory` action plugin (first play of every stage, with
the run's own variables and vault secrets) and the `rosenblatt` CLI (before it writes an inventory file).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_schema import (
    ALL_FIELDS,
    connection_problems,
    inventory_problems,
    validate_fleet,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_sources import Group, definitions
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import load_role_inputs

CONNECTION = ("ansible_host", "ansible_port")


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_inventory(manager: Any, sources: Iterable[str], loader: Any, roles_dir: str | Path,
                    host_vars: Callable[[str], Mapping[str, Any]], *, hosts: Iterable[str] | None = None,
                    extra_names: Iterable[str] = (), playbook_dir: str | None = None) -> Outcome:
    """Check `hosts` (default: every host) of Ansible's InventoryManager `manager`.

    host_vars(host) gives the values as the run sees them (templated on access); loader is Ansible's DataLoader.
    """

    def load(path: Path) -> Any:
        # As the host_group_vars plugin loads it: the cache is shared, so a file read any other way first
        # would reach the play without its templates trusted (and unrendered).
        return loader.load_from_file(str(path), cache="all", unsafe=True, trusted_as_template=True)

    inputs = load_role_inputs(roles_dir)
    groups = [Group(group.name, tuple(sorted(h.name for h in group.get_hosts())),
                    tuple(a.name for a in group.get_ancestors()), dict(group.vars))
              for group in manager.groups.values()]
    inline = {host.name: dict(host.vars) for host in manager.get_hosts()}
    bases = [Path(source) if Path(source).is_dir() else Path(source).parent for source in sources]
    if playbook_dir:
        bases.append(Path(playbook_dir))
    written = definitions(bases, groups, inline, load)
    outcome = Outcome()
    names = sorted(set(ALL_FIELDS) | set(inputs))
    chosen = sorted(hosts) if hosts is not None else sorted(inline)
    defined: dict[str, set[str]] = {}
    membership = {host: {group.name for group in groups if host in group.hosts} for host in chosen}
    for host in chosen:
        variables = host_vars(host)
        values: dict[str, Any] = {}
        for name in names + list(CONNECTION):
            if name not in variables:
                continue
            try:
                values[name] = variables[name]
            except Exception as exc:  # noqa: BLE001 - any templating error is reported, not raised
                outcome.problems.append("%s: %s cannot be evaluated: %s" % (host, name, str(exc).splitlines()[0]))
        outcome.hosts[host] = values
        defined[host] = {item.name for item in written
                         if (item.is_group and item.owner in membership[host])
                         or (not item.is_group and item.owner == host)}
        defined[host].update(extra_names)
    board = {host: {k: v for k, v in values.items() if k not in CONNECTION} for host, values in outcome.hosts.items()}
    fleet = validate_fleet(board, inputs, defined)
    outcome.problems.extend(fleet)
    for host, values in outcome.hosts.items():
        # Derived from board_address and board_port: a bad one is reported as itself above, not as ansible_host.
        if not any(problem.startswith(host + ":") or (", " + host) in problem.split(":")[0] for problem in fleet):
            outcome.problems.extend(connection_problems(host, values))
    problems, warnings = inventory_problems(written, groups)
    outcome.problems.extend(problems)
    outcome.warnings.extend(warnings)
    return outcome


class _Templated(Mapping[str, Any]):
    """One host's variables templated on access, as hostvars are inside a play."""

    def __init__(self, raw: Mapping[str, Any], template: Callable[[Any], Any]) -> None:
        self._raw, self._template = raw, template

    def __getitem__(self, name: str) -> Any:
        return self._template(self._raw[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def check_sources(sources: list[str], roles_dir: str | Path, playbook_dir: str | Path) -> Outcome:
    """check_inventory for a caller outside a play (the CLI, tests), with the variables a play would add."""
    from ansible.inventory.manager import InventoryManager  # noqa: PLC0415 (Ansible is slow to import)
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.plugins.loader import init_plugin_loader  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415
    from ansible.vars.manager import VariableManager  # noqa: PLC0415

    with warnings.catch_warnings():  # a second call in one process only says the finder is there already
        warnings.filterwarnings("ignore", "AnsibleCollectionFinder has already been configured")
        # Lookups and filters in group_vars (env for the cache and report folders, the board catalogue's) need it
        # outside a play, with this collection's folder whatever the caller's configuration says.
        init_plugin_loader([str(Path(__file__).resolve().parents[5])])
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=sources)
    variables = VariableManager(loader=loader, inventory=manager)

    def host_vars(host: str) -> Mapping[str, Any]:
        raw = {**variables.get_vars(host=manager.get_host(host), include_hostvars=False),
               "playbook_dir": str(playbook_dir)}
        return _Templated(raw, Templar(loader=loader, variables=raw).template)

    return check_inventory(manager, sources, loader, roles_dir, host_vars,
                           playbook_dir=str(playbook_dir))
