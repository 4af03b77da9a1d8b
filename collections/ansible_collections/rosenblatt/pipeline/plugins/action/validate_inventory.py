# Copyright: rosenblatt developers
# MIT License
"""Action plugin: check the inventory of every host in the play on the controller, touching no host."""

from __future__ import annotations

from typing import Any

from ansible.inventory.manager import InventoryManager
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_check import check_inventory
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_schema import confirmation_problems


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={
            "hosts": {"type": "list", "elements": "str"},
            "roles_dir": {"type": "path", "required": True},
            "require_confirmation": {"type": "bool", "default": False},
            "confirm": {"type": "raw"},
        })
        sources = list(task_vars.get("ansible_inventory_sources") or [])
        manager = InventoryManager(loader=self._loader, sources=sources)
        hostvars = task_vars["hostvars"]
        outcome = check_inventory(
            manager, sources, self._loader, args["roles_dir"],
            lambda host: hostvars[host], hosts=args["hosts"] or task_vars.get("ansible_play_hosts_all", []),
            extra_names=load_extra_vars(self._loader), playbook_dir=task_vars.get("playbook_dir"))
        problems = outcome.problems
        if args["require_confirmation"]:
            problems.extend(confirmation_problems(outcome.hosts, args["confirm"]))
        result.update(changed=False, hosts=sorted(outcome.hosts), problems=problems)
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        if problems:
            result["failed"] = True
            result["msg"] = "inventory check failed:\n  " + "\n  ".join(problems)
        else:
            result["msg"] = "inventory check passed for %d host(s)" % len(outcome.hosts)
        return result
