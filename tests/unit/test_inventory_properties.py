"""Property-based: random inventories are either accepted, and then pass every role's own argument check
(what Ansible runs when a stage starts a role), or refused with messages that name a real variable.

Two tiers: many generated variable sets through the checker in-process, and fewer whole inventories
written to disk through `ansible-playbook playbooks/validate.yml` (the action plugin), which must agree
with the in-process verdict and never print a traceback.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.inventory_schema import (
    ALL_FIELDS,
    ANSIBLE_VARIABLES,
    PIN_FIELDS,
    validate_fleet,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import load_role_inputs
from tests.conftest import REPO, run_playbook

INPUTS = load_role_inputs(REPO / "roles")
KNOWN = set(ALL_FIELDS) | set(INPUTS) | set(ANSIBLE_VARIABLES)
PINS = {key: value for key, value in yaml.safe_load((REPO / "inventory/group_vars/all.yml").read_text()).items()
        if key in PIN_FIELDS}
BOARD = {**PINS, **yaml.safe_load((REPO / "inventory/host_vars/boltzmann.yml").read_text())}
ROLE_SPECS = {spec_file.parent.parent.name: entry.get("options") or {}
              for spec_file in sorted((REPO / "roles").glob("*/meta/argument_specs.yml"))
              for name, entry in yaml.safe_load(spec_file.read_text())["argument_specs"].items() if name == "main"}
# Names mutated: every variable a user can set, and some that are one letter off.
NAMES = sorted(set(ALL_FIELDS) | set(INPUTS))

scalars = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=24),
    st.sampled_from(["", "..", "../etc", "/dev/sda", "/var/lib/x", "rel/path", "https://example.org/x",
                     "http://example.org/x", "4-7", "ready", "v7.2.13", "a" * 64, "0" * 40, "x\ny", "boltzmann",
                     "192.0.2.7", "localhost", "yes", "3", "-1", "dhcp"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(
    ["mode", "address", "gateway", "dns", "device", "baud", "name", "command", "method", "size_bytes"]), scalars,
    max_size=3))
host_names = st.sampled_from(["b1", "b2", "rack-3", "node1", "nodel", "B1", "bo\u0142tz", "-x", "a.b"])
mutations = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)
fleets = st.dictionaries(host_names, mutations, min_size=1, max_size=3)

PROBLEM = re.compile(r"(?P<hosts>[^:]+): (?P<name>[A-Za-z_][\w.\[\]]*) ")


def build(fleet: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {host: {**BOARD, "board_address": "192.0.2.%d" % (index + 1), "board_shared": False, **changes}
            for index, (host, changes) in enumerate(fleet.items())}


def names_a_real_variable(problem: str, hosts: dict[str, Any]) -> bool:
    if "host name" in problem or "board_address" in problem:
        return True
    match = PROBLEM.match(problem)
    if not match:
        return False
    name = re.split(r"[.\[]", match.group("name"))[0]
    return all(host.strip() in hosts for host in match.group("hosts").split(",")) and (
        name in KNOWN or "did you mean" in problem)


def ansible_accepts(variables: dict[str, Any]) -> list[str]:
    """Errors of Ansible's own role argument check for every role, over the variables each role declares."""
    errors = []
    for role, options in ROLE_SPECS.items():
        given_ = {name: variables[name] for name in options if name in variables}
        spec = {name: {**option, "required": False} for name, option in options.items()}
        for option in spec.values():
            option.pop("description", None)
            option.pop("default", None)
        result = ArgumentSpecValidator(spec).validate(given_)
        errors.extend("%s: %s" % (role, message) for message in result.error_messages)
    return errors


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets)
def test_accepted_or_refused_naming_a_real_variable(fleet: dict[str, dict[str, Any]]) -> None:
    hosts = build(fleet)
    problems = validate_fleet(hosts, INPUTS)
    for problem in problems:
        assert names_a_real_variable(problem, hosts), problem
        assert "Traceback" not in problem
    if not problems:
        for variables in hosts.values():
            assert ansible_accepts(variables) == [], variables


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(name for name, spec in INPUTS.items()
                              if spec.rule.minimum is not None and spec.kind != "list")),
       st.integers(min_value=-(2**31), max_value=2**31))
def test_a_number_out_of_its_range_is_refused_by_name(name: str, number: int) -> None:
    rule = INPUTS[name].rule
    problems = validate_fleet({"b1": {**BOARD, name: number}}, INPUTS)
    inside = rule.minimum <= number <= rule.maximum  # type: ignore[operator]
    assert (problems == []) == inside, (name, number, problems)
    if not inside:
        assert problems[0].startswith("b1: %s is %d (expected " % (name, number))


@settings(max_examples=10, deadline=None, phases=[Phase.generate], suppress_health_check=[HealthCheck.too_slow])
@given(fleets)
def test_the_playbook_agrees_with_the_checker(fleet: dict[str, dict[str, Any]]) -> None:
    hosts = build(fleet)
    expected = validate_fleet(hosts, INPUTS)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "group_vars").mkdir()
        (root / "group_vars/all.yml").write_text((REPO / "inventory/group_vars/all.yml").read_text())
        inline = {host: {k: v for k, v in variables.items() if k not in PINS or v != PINS[k]}
                  for host, variables in hosts.items()}
        (root / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"rk3588": {"hosts": inline}}}}))
        result = run_playbook("-i", str(root), "playbooks/validate.yml")
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert (result.returncode == 0) == (not expected), output[-3000:]
    for problem in expected:
        assert problem.split(" is ")[0].split(" has ")[0] in output, problem
