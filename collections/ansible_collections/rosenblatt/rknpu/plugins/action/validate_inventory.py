# Copyright: rosenblatt developers
# MIT License
"""Action plugin: check the inventory of every host in the play on the controller, touching no host."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.inventory_schema import (
    HOST_FIELDS,
    confirmation_problems,
    validate_fleet,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={
            "hosts": {"type": "list", "elements": "str"},
            "require_confirmation": {"type": "bool", "default": False},
            "confirm": {"type": "raw"},
        })
        names = args["hosts"] or task_vars.get("ansible_play_hosts_all", [])
        hostvars = task_vars["hostvars"]
        collected: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for host in names:
            variables = hostvars[host]
            collected[host] = {}
            for name in HOST_FIELDS:
                if name not in variables:
                    continue
                try:
                    collected[host][name] = variables[name]
                except Exception as exc:  # noqa: BLE001 - any templating error is reported, not raised
                    problems.append("%s: %s cannot be evaluated: %s" % (host, name, exc))
        problems.extend(validate_fleet({host: vars_ for host, vars_ in collected.items()}))
        if args["require_confirmation"]:
            problems.extend(confirmation_problems(collected, args["confirm"]))
        result.update(changed=False, hosts=sorted(collected), problems=problems)
        if problems:
            result["failed"] = True
            result["msg"] = "inventory check failed:\n  " + "\n  ".join(problems)
        else:
            result["msg"] = "inventory check passed for %d host(s)" % len(collected)
        return result
