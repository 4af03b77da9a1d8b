"""Each fact written once: a role input described in meta/argument_specs.yml and valued in defaults/main.yml,
a board in the catalogue; the tables of the role READMEs and docs/boards.md generated (tools/doc_tables.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("doc_tables", REPO / "tools/doc_tables.py")
assert _SPEC and _SPEC.loader
doc_tables = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(doc_tables)
ROLES = sorted(path.parents[1] for path in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def _options(role: Path) -> dict:
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    return {name: option for spec in specs.values() for name, option in (spec.get("options") or {}).items()}


def _defaults(role: Path) -> dict:
    path = role / "defaults/main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_default_is_described_and_no_description_holds_a_default(role: Path) -> None:
    options = _options(role)
    assert sorted(set(_defaults(role)) - set(options)) == [], "in defaults/main.yml, not in meta/argument_specs.yml"
    assert sorted(name for name, option in options.items() if "default" in option) == [], \
        "a default in meta/argument_specs.yml (Ansible applies only defaults/main.yml's: write it there)"


def test_generated_tables_are_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "tools/doc_tables.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_changed_description_makes_the_readme_stale(tmp_path: Path) -> None:
    role = tmp_path / "demo_role"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "defaults/main.yml").write_text("demo_role_port: 22\n")
    spec = {"argument_specs": {"main": {"short_description": "x", "options": {
        "demo_role_port": {"type": "int", "description": ["SSH port.", "Allowed: 1 to 65535."]},
        "demo_role_host": {"type": "str", "required": True, "description": "Host | name."}}}}}
    (role / "meta/argument_specs.yml").write_text(yaml.safe_dump(spec))
    begin, end = doc_tables.begin("inputs"), doc_tables.end("inputs")
    (role / "README.md").write_text(f"# demo\n\n{begin}\nold\n{end}\n\nAfter.\n")
    text = doc_tables.rendered(role / "README.md", {"inputs": doc_tables.inputs_table(role)})
    assert "| `demo_role_port` | `22` | SSH port. Allowed: 1 to 65535. |" in text
    assert "| `demo_role_host` | required | Host \\| name. |" in text
    assert text.endswith(f"{end}\n\nAfter.\n") and "old" not in text


def test_the_board_table_has_every_catalogued_board() -> None:
    table = doc_tables.boards_table()
    assert [line.split("`")[1] for line in table.splitlines()[2:]] == list(doc_tables.BOARDS)
    assert "| `radxa-rock-5-itx-plus` | rk3588 | rockchip/rk3588-rock-5-itx.dtb | ttyS2,1500000 | dw_wdt |" in table
