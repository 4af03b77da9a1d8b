"""Every role input is described once, in its meta/argument_specs.yml, well enough to be checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import (
    ALLOWED,
    input_problems,
    iter_inputs,
    load_role_inputs,
    parse_rule,
)

REPO = Path(__file__).resolve().parents[2]
INPUTS = load_role_inputs(REPO / "roles")


def test_every_role_is_read() -> None:
    roles = {path.parent.parent.name for path in (REPO / "roles").glob("*/meta/argument_specs.yml")}
    assert {role for spec in INPUTS.values() for role in spec.roles} == roles
    assert len(INPUTS) > 100


@pytest.mark.parametrize("name", sorted(name for name, spec in iter_inputs(INPUTS) if spec.kind in ("int", "float")))
def test_every_number_has_a_range(name: str) -> None:
    spec = dict(iter_inputs(INPUTS))[name]
    assert spec.rule.minimum is not None and spec.rule.maximum is not None, f"{name}: no 'Allowed: A to B.' line"
    assert spec.rule.minimum <= spec.rule.maximum


def test_every_default_is_allowed() -> None:
    """A role's own default (defaults/main.yml) must pass its own rule (templated ones are checked when resolved)."""
    problems = []
    for defaults_file in sorted((REPO / "roles").glob("*/defaults/main.yml")):
        for name, default in (yaml.safe_load(defaults_file.read_text()) or {}).items():
            if name not in INPUTS or "{{" in str(default):
                continue
            problems.extend(input_problems(name, INPUTS[name], default, {"verdicts": ["ready"], "hosts": []}))
    assert problems == []


def test_a_name_shared_by_roles_means_the_same_everywhere() -> None:
    seen: dict[str, tuple] = {}
    for spec_file in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            for name, option in (entry.get("options") or {}).items():
                allowed = [line for line in option.get("description", []) if str(line).startswith(ALLOWED)]
                shape = (option.get("type", "str"), option.get("elements"), option.get("choices"), allowed)
                assert seen.setdefault(name, shape) == shape, f"{name} differs in {spec_file}"


@pytest.mark.parametrize(("line", "kind", "good", "bad"), [
    ("1 to 100.", "int", [], []),
    ("a file name.", "str", ["npu.config"], ["", "..", "a/b", "x\n"]),
    ("a relative path or empty.", "str", ["", "rockchip/x.dtb"], ["/abs", "a/../../b"]),
    ("a URL (https, file) or an absolute path.", "str", ["https://h/x", "file:///x", "/srv/x"],
     ["http://h/x", "https://", "file://rel", "/a/../b"]),
    ("text matching `[a-z]+` (a suite).", "str", ["sid"], ["sid\n", "Sid", "sid x"]),
    ("a CPU list or empty.", "str", ["", "4-7", "0,2-3"], ["7-4", "4-", "a"]),
    ("a regular expression.", "str", ["^x$"], ["(x"]),
    (None, "path", ["/var/x"], ["var/x", "/var/../etc"]),
    (None, "str", ["any text"], ["two\nlines"]),
])
def test_rules(line: str | None, kind: str, good: list[str], bad: list[str]) -> None:
    rule = parse_rule(line, kind)
    for value in good:
        assert (value == "" and rule.empty_ok) or rule.check is None or rule.check(value, {}), value
    for value in bad:
        assert not (value == "" and rule.empty_ok) and rule.check is not None and not rule.check(value, {}), value


def test_an_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown Allowed line"):
        parse_rule("a colour.", "str")
