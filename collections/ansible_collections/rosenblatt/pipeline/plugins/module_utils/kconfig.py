# Copyright: rosenblatt developers
# MIT License
"""Check a merged kernel `.config` against the fragments that asked for values, and explain misses.

Kconfig silently drops a requested value when the symbol's dependencies are not met. To say *why*,
this reads the kernel's own Kconfig files (following `source` from the top-level `Kconfig`), records
for every symbol its `depends on` expressions together with the enclosing `if`, `menu` and `choice`
conditions, and evaluates each condition against the final `.config` the way Kconfig does (tristate
logic: n < m < y). A dropped symbol is then reported with the conditions that hold it down, each
symbol annotated with its value, e.g. `ROCKCHIP_IOMMU [=n]`, as menuconfig shows them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

TRISTATE = {"n": 0, "m": 1, "y": 2}
_TOKEN = re.compile(r'\s*(&&|\|\||!=|<=|>=|[!()=<>]|"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.$-]+)')
_ENTRY = re.compile(r"^(menuconfig|config)\s+([A-Za-z0-9_]+)\s*$")
_SOURCE = re.compile(r'^(source|rsource|osource|orsource)\s+"([^"]+)"')
_HELP = re.compile(r"^(help|---help---)\s*$")
_TYPE_WITH_PROMPT = re.compile(r'^(bool|tristate|string|int|hex)\s+("(?:[^"\\]|\\.)*")(?:\s+if\s+(.+))?$')


class KconfigError(Exception):
    """The Kconfig tree could not be read (a message for a person, no traceback)."""


@dataclass
class Definition:
    """One `config SYMBOL` block: where it is and what must hold for it to take a value."""

    file: str
    depends: list[str] = field(default_factory=list)  # the block's own `depends on` lines
    enclosing: list[str] = field(default_factory=list)  # `if`, `menu ... depends on`, `choice ... depends on`
    prompt_condition: str | None = None
    has_prompt: bool = False
    kind: str = ""  # bool, tristate, string, int or hex


@dataclass
class KconfigTree:
    definitions: dict[str, list[Definition]] = field(default_factory=dict)
    selected_by: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)  # SYM -> [(selector, if)]


def _logical_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        raw = handle.read().split("\n")
    lines: list[str] = []
    pending = ""
    for line in raw:
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _without_help(lines: list[str]) -> list[str]:
    """The lines that are not help text (Kconfig: help text is indented at least as much as its first line)."""
    kept: list[str] = []
    in_help, help_indent = False, 0
    for line in lines:
        stripped = line.strip()
        if in_help:
            if not stripped:
                continue
            help_indent = help_indent or _indent(line)
            if _indent(line) >= help_indent:
                continue
            in_help = False
        if _HELP.match(stripped):
            in_help, help_indent = True, 0
        elif stripped and not stripped.startswith("#"):
            kept.append(re.sub(r"\s+#.*$", "", stripped) if '"' not in stripped else stripped)
    return kept


class _Reader:
    """Follows `source` from the top-level Kconfig. Conditions opened by if/menu/choice carry across
    `source`, so one stack serves all files."""

    def __init__(self, srctree: str, srcarch: str) -> None:
        self.srctree, self.srcarch = srctree, srcarch
        self.tree = KconfigTree()
        self.stack: list[tuple[str, str | None]] = []

    def read(self, path: str) -> None:
        current: tuple[str, Definition] | None = None  # (symbol, definition) of the open config block
        block: str | None = None  # "config", "menu" or "choice": what a `depends on` line belongs to
        for stripped in _without_help(_logical_lines(path)):
            entry, source = _ENTRY.match(stripped), _SOURCE.match(stripped)
            keyword, _, rest = stripped.partition(" ")
            if entry:
                definition = Definition(file=os.path.relpath(path, self.srctree),
                                        enclosing=[c for _, c in self.stack if c])
                self.tree.definitions.setdefault(entry.group(2), []).append(definition)
                current, block = (entry.group(2), definition), "config"
            elif source:
                current, block = None, None
                self.source(source, path)
            elif keyword in ("if", "endif", "menu", "choice", "endmenu", "endchoice", "comment", "mainmenu"):
                current, block = None, self.structure(keyword, rest.strip(), path)
            elif stripped.startswith("depends on "):
                self.depends(stripped[len("depends on "):].strip(), block, current)
            elif block == "config" and current:
                _config_attribute(stripped, keyword, rest.strip(), current, self.tree)

    def structure(self, keyword: str, rest: str, path: str) -> str | None:
        """Opens or closes an if/menu/choice; returns what a following `depends on` belongs to."""
        if keyword == "if":
            self.stack.append(("if", rest))
        elif keyword in ("menu", "choice"):
            self.stack.append((keyword, None))
            return keyword
        elif keyword.startswith("end"):
            kind = keyword[3:]
            if not self.stack or self.stack[-1][0] != kind:
                raise KconfigError("%s: unbalanced %s" % (path, keyword))
            self.stack.pop()
        return "comment" if keyword in ("comment", "mainmenu") else None

    def depends(self, condition: str, block: str | None, current: tuple[str, Definition] | None) -> None:
        if block == "config" and current:
            current[1].depends.append(condition)
        elif block in ("menu", "choice") and self.stack:
            kind, existing = self.stack[-1]
            self.stack[-1] = (kind, condition if existing is None else "(%s) && (%s)" % (existing, condition))

    def source(self, source: re.Match, path: str) -> None:
        kind, target = source.groups()
        target = _expand(target, self.srcarch)
        base = os.path.dirname(path) if kind.startswith(("r", "or")) else self.srctree
        target_path = os.path.join(base, target)
        if "$(" in target or not os.path.isfile(target_path):
            return  # a file this architecture does not have, or a macro we do not expand
        self.read(target_path)


def parse_tree(srctree: str, srcarch: str) -> KconfigTree:
    """Every config definition reachable from `<srctree>/Kconfig` for the architecture `srcarch`."""
    top = os.path.join(srctree, "Kconfig")
    if not os.path.isfile(top):
        raise KconfigError("%s has no top-level Kconfig: not a kernel source tree" % srctree)
    reader = _Reader(srctree, srcarch)
    reader.read(top)
    return reader.tree


def _expand(path: str, srcarch: str) -> str:
    return path.replace("$(SRCARCH)", srcarch).replace("$(HEADER_ARCH)", srcarch).replace("$(ARCH)", srcarch)


def _config_attribute(stripped: str, keyword: str, rest: str, current: tuple[str, Definition],
                      tree: KconfigTree) -> None:
    symbol, definition = current
    if keyword in ("bool", "tristate", "string", "int", "hex", "def_bool", "def_tristate"):
        definition.kind = keyword.replace("def_", "")
    typed = _TYPE_WITH_PROMPT.match(stripped)
    if typed:
        definition.has_prompt = True
        definition.prompt_condition = typed.group(3)
    elif keyword == "prompt":
        definition.has_prompt = True
        match = re.match(r'^("(?:[^"\\]|\\.)*")(?:\s+if\s+(.+))?$', rest)
        definition.prompt_condition = match.group(2) if match else None
    elif keyword == "select":
        target, _, condition = rest.partition(" if ")
        enclosing = [*definition.enclosing, *definition.depends]
        guard = " && ".join("(%s)" % c for c in [*enclosing, condition.strip()] if c) or None
        tree.selected_by.setdefault(target.strip(), []).append((symbol, guard))


# --- expressions -------------------------------------------------------------------------------------

def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match:
            raise KconfigError("cannot read Kconfig expression %r" % expression)
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over Kconfig's expression grammar: || binds loosest, then &&, then !, then =."""

    def __init__(self, expression: str) -> None:
        self.tokens = _tokens(expression)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> tuple:
        node = self.disjunction()
        if self.peek() is not None:
            raise KconfigError("unexpected %r in Kconfig expression" % self.peek())
        return node

    def disjunction(self) -> tuple:
        node = self.conjunction()
        while self.peek() == "||":
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.unary()
        while self.peek() == "&&":
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> tuple:
        token = self.peek()
        if token == "!":
            self.take()
            return ("not", self.unary())
        if token == "(":
            self.take()
            node = self.disjunction()
            if self.peek() != ")":
                raise KconfigError("missing ) in Kconfig expression")
            self.take()
            return ("paren", node)
        left = ("sym", self.take())
        if self.peek() in ("=", "!=", "<", ">", "<=", ">="):
            operator = self.take()
            return ("cmp", operator, left, ("sym", self.take()))
        return left


def _conjuncts(node: tuple) -> list[tuple]:
    if node[0] == "and":
        return _conjuncts(node[1]) + _conjuncts(node[2])
    if node[0] == "paren" and node[1][0] == "and":
        return _conjuncts(node[1])
    return [node]


def _symbol_value(token: str, values: dict[str, str]) -> str:
    if token[:1] in ('"', "'"):
        return token[1:-1]
    if token in TRISTATE:
        return token
    return values.get(token, "n")


def _tristate(text: str) -> int:
    return TRISTATE.get(text, 0)


def evaluate(node: tuple, values: dict[str, str]) -> int:
    """Kconfig tristate value (0, 1, 2) of a parsed expression with symbol values from a `.config`."""
    kind = node[0]
    if kind == "sym":
        return _tristate(_symbol_value(node[1], values))
    if kind == "paren":
        return evaluate(node[1], values)
    if kind == "not":
        return 2 - evaluate(node[1], values)
    if kind == "and":
        return min(evaluate(node[1], values), evaluate(node[2], values))
    if kind == "or":
        return max(evaluate(node[1], values), evaluate(node[2], values))
    operator, left, right = node[1], _symbol_value(node[2][1], values), _symbol_value(node[3][1], values)
    if operator in ("=", "!="):
        return 2 if (left == right) == (operator == "=") else 0
    try:
        numbers = [int(x, 16) if x.lower().startswith("0x") else int(x) for x in (left, right)]
    except ValueError:
        return 0
    result = {"<": numbers[0] < numbers[1], ">": numbers[0] > numbers[1],
              "<=": numbers[0] <= numbers[1], ">=": numbers[0] >= numbers[1]}[operator]
    return 2 if result else 0


def render(node: tuple, values: dict[str, str]) -> str:
    """The expression with every symbol annotated with its value, as menuconfig shows dependencies."""
    kind = node[0]
    if kind == "sym":
        token = node[1]
        if token[:1] in ('"', "'") or token in TRISTATE or re.fullmatch(r"-?(0x)?[0-9a-fA-F]+", token):
            return token
        return "%s [=%s]" % (token, values.get(token, "n"))
    if kind == "paren":
        return "(%s)" % render(node[1], values)
    if kind == "not":
        return "!%s" % render(node[1], values)
    if kind in ("and", "or"):
        return "%s %s %s" % (render(node[1], values), "&&" if kind == "and" else "||", render(node[2], values))
    return "%s %s %s" % (render(node[2], values), node[1], render(node[3], values))


# --- .config and fragments -----------------------------------------------------------------------------

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


def read_config(path: str) -> dict[str, str]:
    """SYMBOL -> value (without the CONFIG_ prefix; quotes kept off strings; `n` for `is not set`)."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            unset, assigned = _UNSET.match(line), _SET.match(line)
            if unset:
                values[unset.group(1)] = "n"
            elif assigned:
                value = assigned.group(2)
                values[assigned.group(1)] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
            elif line.strip() and not line.startswith("#"):
                raise KconfigError("%s line %d is not a config line: %r" % (path, number, line))
    return values


@dataclass
class Miss:
    """A fragment asked for a value that the final .config does not have."""

    symbol: str
    fragment: str
    wanted: str
    got: str
    reasons: list[str]

    def describe(self) -> str:
        return "CONFIG_%s (from %s): asked %s, got %s; %s" % (
            self.symbol, self.fragment, self.wanted, self.got if self.got != "n" else "not set",
            "; ".join(self.reasons))


def explain(symbol: str, wanted: str, values: dict[str, str], tree: KconfigTree) -> list[str]:
    """Why SYMBOL could not take WANTED: its unmet conditions, read from Kconfig, with current values."""
    definitions = tree.definitions.get(symbol)
    if not definitions:
        return ["not defined by any Kconfig of this kernel for this architecture"]
    reasons: list[str] = []
    need = _tristate(wanted) if wanted in TRISTATE else 1
    if all(definition.kind == "bool" for definition in definitions):
        need = min(need, 1)  # Kconfig promotes a bool whose dependencies are m to y
    if need == 0:
        selectors = ["%s [=%s]" % (name, values.get(name, "n")) for name, guard in tree.selected_by.get(symbol, [])
                     if _tristate(values.get(name, "n")) > 0 and (guard is None or evaluate(_Parser(guard).parse(),
                                                                                             values) > 0)]
        return ["selected by " + ", ".join(selectors)] if selectors else ["forced on by Kconfig (default or select)"]
    for definition in definitions:
        for condition in [*definition.enclosing, *definition.depends]:
            node = _Parser(condition).parse()
            for conjunct in _conjuncts(node):
                level = evaluate(conjunct, values)
                if level < need:
                    limit = "unmet" if level == 0 else "limits it to m"
                    reasons.append("%s: %s (%s)" % (limit, render(conjunct, values), definition.file))
        if definition.has_prompt and definition.prompt_condition:
            node = _Parser(definition.prompt_condition).parse()
            if evaluate(node, values) == 0:
                reasons.append("prompt hidden: %s (%s)" % (render(node, values), definition.file))
    if not reasons:
        if not any(d.has_prompt for d in definitions):
            return ["has no prompt: it can only be set by a select or a default"]
        return ["dependencies met; the value is overridden (choice, select or range)"]
    return sorted(set(reasons), key=reasons.index)


def read_fragment(path: str) -> dict[str, str]:
    try:
        return read_config(path)
    except KconfigError as exc:
        raise KconfigError("config fragment %s" % exc) from None


def verify(config_path: str, fragments: list[str], srctree: str, srcarch: str) -> list[Miss]:
    """Every symbol every fragment sets must have that value in the final .config; list the misses."""
    final = read_config(config_path)
    misses: list[Miss] = []
    wanted_by: dict[str, tuple[str, str]] = {}
    for fragment in fragments:
        for symbol, value in read_fragment(fragment).items():
            wanted_by[symbol] = (value, fragment)  # a later fragment overrides an earlier one, as merge_config.sh
    tree: KconfigTree | None = None
    for symbol, (value, fragment) in wanted_by.items():
        got = final.get(symbol, "n")
        if got == value:
            continue
        tree = tree or parse_tree(srctree, srcarch)
        misses.append(Miss(symbol, os.path.basename(fragment), value, got, explain(symbol, value, final, tree)))
    return misses
