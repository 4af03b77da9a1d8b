# Copyright: rosenblatt developers
# MIT License
"""Every input of every role, as its `meta/argument_specs.yml` describes it, and the check of a value.

The argument spec is the one description of each input: its type, choices and elements come from the
spec's own keys, and what Ansible's spec cannot say (ranges, formats) from the last line of the
description, written for people and read here:

    Allowed: 1 to 100.                      numbers, both ends included
    Allowed: a file name.                   no folder, no "..", not empty ("or an absolute path" may follow)
    Allowed: a relative path.               no leading "/", no ".." component
    Allowed: an absolute path.              (the default of type path)
    Allowed: a URL (https, http, file).     the schemes accepted; "or an absolute path" may follow
    Allowed: text matching `REGEX` (...).   the whole value must match
    Allowed: a sha256.  a host name.  a CPU list.  a regular expression.  an NPU verdict.  a boot chain.
    Allowed: a host of the inventory.  a board model of the inventory check (...).  one line of text.
    Allowed: a board network (board_network).  set by the kernel rollout.

Any of them may end in "or empty". A string without a line is one line of text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boot_chains import BOOT_CHAINS

HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
SHA256 = re.compile(r"[0-9a-f]{64}")
CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
ALLOWED = "Allowed: "


def is_host_name(value: str) -> bool:
    # A name made only of digits and dots is a malformed IPv4 address, not a host name.
    return value.isascii() and bool(HOSTNAME.fullmatch(value)) and not re.fullmatch(r"[0-9.]+", value)


def is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return is_host_name(value)


def _one_line(value: str) -> bool:
    return "\n" not in value and "\r" not in value and "\0" not in value


def _path_parts_ok(value: str) -> bool:
    return _one_line(value) and ".." not in value.split("/")


def _regex_ok(value: str) -> bool:
    try:
        re.compile(value)
        return True
    except re.error:
        return False


def _url(schemes: tuple[str, ...], path_too: bool) -> Callable[[str, Mapping[str, Any]], bool]:
    def check(value: str, _context: Mapping[str, Any]) -> bool:
        if path_too and value.startswith("/"):
            return _path_parts_ok(value)
        match = re.fullmatch(r"([a-z][a-z0-9+.-]*)://(\S+)", value)
        if not match or match.group(1) not in schemes:
            return False
        if match.group(1) == "file":
            return match.group(2).startswith("/") and _path_parts_ok(match.group(2))
        return bool(re.match(r"[^/\s]+", match.group(2)))
    return check


def _cpu_list(value: str, _context: Mapping[str, Any]) -> bool:
    if not CPU_LIST.fullmatch(value):
        return False
    ranges = [tuple(int(n) for n in part.split("-")) for part in value.split(",")]
    return all(len(r) == 1 or r[0] <= r[1] for r in ranges) and all(n < 4096 for r in ranges for n in r)


# Checks that need more than the value: the validator passes what they need in `context`.
NAMED_CHECKS: dict[str, Callable[[str, Mapping[str, Any]], bool]] = {
    "a file name": lambda v, _: bool(v) and _one_line(v) and "/" not in v and v not in (".", ".."),
    "a file name or an absolute path": lambda v, _: (NAMED_CHECKS["a file name"](v, _)
                                                     or NAMED_CHECKS["an absolute path"](v, _)),
    "a relative path": lambda v, _: bool(v) and not v.startswith("/") and _path_parts_ok(v),
    "an absolute path": lambda v, _: v.startswith("/") and _path_parts_ok(v),
    "a sha256": lambda v, _: bool(SHA256.fullmatch(v)),
    "a host name": lambda v, _: is_host_name(v),
    "a CPU list": _cpu_list,
    "a regular expression": lambda v, _: _one_line(v) and _regex_ok(v),
    "one line of text": lambda v, _: _one_line(v),
    "an NPU verdict": lambda v, context: v in context.get("verdicts", ()),
    "a boot chain": lambda v, _: v in BOOT_CHAINS,
    "a host of the inventory": lambda v, context: v in context.get("hosts", ()) or v == "localhost",
}
# Values another check owns (the board description) or that a role sets for itself: type only here.
DELEGATED = ("a board model of the inventory check", "a board network", "set by the kernel rollout")


@dataclass(frozen=True)
class Rule:
    """What the `Allowed:` line says, and its wording for messages."""

    expected: str
    check: Callable[[Any, Mapping[str, Any]], bool] | None = None
    minimum: float | None = None
    maximum: float | None = None
    empty_ok: bool = False


def parse_rule(line: str | None, kind: str) -> Rule:
    """The Rule of an `Allowed:` line (without the prefix), or the default for the type when there is none."""
    if line is None:
        line = {"path": "an absolute path", "str": "one line of text"}.get(kind, "")
    text = line.rstrip(".").strip()
    empty_ok = text.endswith(" or empty")
    body = text[:-len(" or empty")] if empty_ok else text
    numbers = re.fullmatch(r"(-?\d+(?:\.\d+)?) to (-?\d+(?:\.\d+)?)", body)
    if numbers:
        return Rule(text, minimum=float(numbers.group(1)), maximum=float(numbers.group(2)))
    pattern = re.fullmatch(r"text matching `([^`]+)`.*", body)
    if pattern:
        compiled = re.compile(pattern.group(1))
        return Rule(text, lambda v, _: bool(compiled.fullmatch(v)), empty_ok=empty_ok)
    url = re.fullmatch(r"a URL \(([a-z, ]+)\)(.*)", body)
    if url:
        schemes = tuple(s.strip() for s in url.group(1).split(","))
        return Rule(text, _url(schemes, "or an absolute path" in url.group(2)), empty_ok=empty_ok)
    for name, check in NAMED_CHECKS.items():
        if body == name:
            return Rule(text, check, empty_ok=empty_ok)
    if not body or body.startswith(DELEGATED):
        return Rule(text or "any value")
    raise ValueError("unknown Allowed line %r" % line)


@dataclass(frozen=True)
class Input:
    """One role input: Ansible's own spec keys plus the Rule of its description."""

    name: str
    kind: str
    rule: Rule
    elements: str | None = None
    choices: tuple[Any, ...] | None = None
    options: Mapping[str, Input] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    no_log: bool = False
    required: bool = False


def _allowed_line(spec: Mapping[str, Any]) -> str | None:
    description = spec.get("description") or []
    lines = description if isinstance(description, list) else [description]
    found = [str(line)[len(ALLOWED):] for line in lines if str(line).startswith(ALLOWED)]
    return found[-1] if found else None


def _input(name: str, spec: Mapping[str, Any], role: str) -> Input:
    kind = spec.get("type", "str")
    elements = spec.get("elements")
    rule = parse_rule(_allowed_line(spec), elements if kind == "list" and elements else kind)
    options = {sub: _input(sub, sub_spec, role) for sub, sub_spec in (spec.get("options") or {}).items()}
    choices = tuple(spec["choices"]) if isinstance(spec.get("choices"), list) else None
    return Input(name, kind, rule, elements, choices, options, (role,), bool(spec.get("no_log")),
                 bool(spec.get("required")))


def load_role_inputs(roles_dir: str | Path) -> dict[str, Input]:
    """Every option of every entry point of every role under roles_dir, by name (a name shared by roles once)."""
    inputs: dict[str, Input] = {}
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        document = yaml.safe_load(spec_file.read_text()) or {}
        for entry in (document.get("argument_specs") or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                found = _input(name, spec, role)
                known = inputs.get(name)
                inputs[name] = found if known is None else Input(
                    known.name, known.kind, known.rule, known.elements, known.choices, known.options,
                    known.roles + ((role,) if role not in known.roles else ()), known.no_log or found.no_log,
                    known.required)
    return inputs


def iter_inputs(inputs: Mapping[str, Input]) -> Iterator[tuple[str, Input]]:
    """Every input and sub-option, with its dotted name."""
    for name, spec in inputs.items():
        yield name, spec
        for sub_name, sub in iter_inputs(spec.options):
            yield name + "." + sub_name, sub


SECRET_NAME = re.compile(r"pass(word)?$|passwd|secret|(^|_)token$|private_key|vault", re.IGNORECASE)


def shown(name: str, value: Any, secret: bool = False) -> str:
    """A value as messages show it: a secret's value never (no_log inputs, names that say password or token)."""
    vaulted = type(value).__name__ in ("AnsibleVaultEncryptedUnicode", "EncryptedString")
    if secret or vaulted or SECRET_NAME.search(name):
        return "(a secret, not shown)"
    return repr(value) if not isinstance(value, str) else repr(str(value))


def type_name(value: Any) -> str:
    # isinstance, not type(): Ansible hands over tagged subclasses of str, int, dict and list.
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (dict, "mapping"), (list, "list"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _convert(kind: str, value: Any) -> tuple[bool, Any]:
    """Value as Ansible's role argument check converts it (digits to int, yes/no to bool), or (False, None)."""
    if kind in ("str", "path"):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return False, None
        return True, str(value)
    if kind == "int":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int):
            return True, value
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
            return True, int(value)
        return False, None
    if kind == "float":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, (int, float)):
            return True, float(value)
        try:
            return (True, float(value)) if isinstance(value, str) else (False, None)
        except ValueError:
            return False, None
    if kind == "bool":
        words = {"yes": True, "on": True, "true": True, "1": True,
                 "no": False, "off": False, "false": False, "0": False}
        if isinstance(value, bool):
            return True, value
        if isinstance(value, (str, int)) and str(value).lower() in words:
            return True, words[str(value).lower()]
        return False, None
    if kind == "list":
        return (True, list(value)) if isinstance(value, (list, tuple)) else (False, None)
    if kind == "dict":
        return (True, value) if isinstance(value, Mapping) else (False, None)
    return True, value  # raw


KIND_WORDS = {"str": "text", "path": "a path", "int": "a whole number", "float": "a number", "bool": "true or false",
              "list": "a list", "dict": "a mapping", "raw": "any value"}


def _expected(spec: Input, kind: str) -> str:
    if spec.choices is not None:
        return "one of " + ", ".join(str(choice) for choice in spec.choices)
    if kind in ("list", "dict", "bool"):
        return KIND_WORDS[kind]
    if kind in ("int", "float") and spec.rule.minimum is not None:
        return "%s, %s" % (KIND_WORDS[kind], spec.rule.expected)
    return spec.rule.expected if spec.rule.expected != "any value" else KIND_WORDS[kind]


def _scalar_problem(spec: Input, kind: str, value: Any, context: Mapping[str, Any]) -> str | None:
    """None when one scalar (a value, or an element of a list) is fine; else "" or, for a wrong type, "a <type> "."""
    ok, converted = _convert(kind, value)
    if not ok:
        return "a %s " % type_name(value)
    if spec.choices is not None:
        return None if str(converted) in [str(choice) for choice in spec.choices] else ""
    rule = spec.rule
    if rule.minimum is not None and rule.maximum is not None and kind in ("int", "float"):
        return None if rule.minimum <= converted <= rule.maximum else ""
    if isinstance(converted, str):
        if converted == "" and rule.empty_ok:
            return None
        if rule.check and not rule.check(converted, context):
            return ""
    return None


def input_problems(path: str, spec: Input, value: Any, context: Mapping[str, Any],
                   suggest: Callable[[str, list[str]], str | None] | None = None) -> list[str]:
    """Problems of one value of one input, each "<path> is <value> (expected ...)"; [] when it is fine."""
    secret = spec.no_log
    if spec.kind == "list":
        ok, items = _convert("list", value)
        if not ok:
            return ["%s is a %s %s (expected a list)" % (path, type_name(value), shown(path, value, secret))]
        problems: list[str] = []
        for index, item in enumerate(items):
            where = "%s[%d]" % (path, index)
            if spec.elements == "dict" or spec.options:
                problems.extend(_dict_problems(where, spec, item, context, suggest))
            elif spec.elements:
                why = _scalar_problem(spec, spec.elements, item, context)
                if why is not None:
                    problems.append("%s is %s%s (expected %s)" % (where, why, shown(path, item, secret),
                                                                  _expected(spec, spec.elements)))
        return problems
    if spec.kind == "dict":
        return _dict_problems(path, spec, value, context, suggest)
    why = _scalar_problem(spec, spec.kind, value, context)
    if why is not None:
        return ["%s is %s%s (expected %s)" % (path, why, shown(path, value, secret), _expected(spec, spec.kind))]
    return []


def _dict_problems(path: str, spec: Input, value: Any, context: Mapping[str, Any],
                   suggest: Callable[[str, list[str]], str | None] | None) -> list[str]:
    if not isinstance(value, Mapping):
        return ["%s is a %s %s (expected a mapping)" % (path, type_name(value), shown(path, value, spec.no_log))]
    if not spec.options:
        return []
    problems = []
    for key in value:
        if key not in spec.options:
            hint = suggest(str(key), list(spec.options)) if suggest else None
            problems.append("%s has an unknown key %s (%s)" % (
                path, key, "did you mean %s?" % hint if hint else "known: " + ", ".join(spec.options)))
    for key, sub in spec.options.items():
        if key in value:
            problems.extend(input_problems("%s.%s" % (path, key), sub, value[key], context, suggest))
        elif sub.required:
            problems.append("%s.%s is missing (expected %s)" % (path, key, _expected(sub, sub.kind)))
    return problems
