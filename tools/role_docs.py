#!/usr/bin/env python3
"""Write each role README's table of inputs from the role's own files, so each input is written once.

The description of an input lives in the role's meta/argument_specs.yml (which `ansible-doc -t role`
and the inventory check read), its default value in defaults/main.yml (the only default Ansible
applies). The README's table, between the two markers below, is generated from both:

  tools/role_docs.py          rewrite the tables
  tools/role_docs.py --check  exit 1 naming every README whose table is not what the files say
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parent.parent / "roles"
BEGIN = "<!-- inputs: written by tools/role_docs.py from meta/argument_specs.yml and defaults/main.yml -->"
END = "<!-- end of inputs -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(value: object) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"`{_cell(shown)}`" if shown != "" else '`""`'


def inputs_table(role: Path) -> str:
    """The Markdown tables of a role's inputs, one per entry point: name, default (or "required"), description."""
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role / "defaults/main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    tables = []
    for entry_point, spec in specs.items():
        rows = [] if entry_point == "main" else [f"Entry point `{entry_point}` ({spec['short_description']}):", ""]
        rows += ["| variable | default | description |", "|---|---|---|"]
        for name, option in spec.get("options", {}).items():
            description = option.get("description", "")
            text = " ".join(description) if isinstance(description, list) else str(description)
            if "choices" in option:
                text += " Choices: " + ", ".join(f"`{choice}`" for choice in option["choices"]) + "."
            default = _default(defaults[name]) if name in defaults else "required"
            rows.append(f"| `{name}` | {default} | {_cell(text)} |")
        tables.append("\n".join(rows))
    return "\n\n".join(tables)


def rendered(role: Path) -> str:
    """The role's README with its inputs table as the files say it should be."""
    readme = (role / "README.md").read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{role / 'README.md'}: no inputs markers ({BEGIN} ... {END})")
    head, rest = readme.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{inputs_table(role)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; fail if a table is stale")
    check = parser.parse_args().check
    stale = []
    for role in sorted(path.parents[1] for path in ROLES.glob("*/meta/argument_specs.yml")):
        text = rendered(role)
        if text != (role / "README.md").read_text():
            stale.append(str(role / "README.md"))
            if not check:
                (role / "README.md").write_text(text)
    if check and stale:
        print("inputs tables out of date (run tools/role_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
