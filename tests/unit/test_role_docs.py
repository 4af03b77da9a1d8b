"""Each role input is written once: described in meta/argument_specs.yml, valued in defaults/main.yml, and
the README's table generated from both (tools/role_docs.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("role_docs", REPO / "tools/role_docs.py")
assert _SPEC and _SPEC.loader
role_docs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(role_docs)
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


def test_role_readmes_are_generated_from_the_role_files() -> None:
    result = subprocess.run([sys.executable, str(REPO / "tools/role_docs.py"), "--check"],
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
    (role / "README.md").write_text(f"# demo\n\n{role_docs.BEGIN}\nold\n{role_docs.END}\n\nAfter.\n")
    text = role_docs.rendered(role)
    assert "| `demo_role_port` | `22` | SSH port. Allowed: 1 to 65535. |" in text
    assert "| `demo_role_host` | required | Host \\| name. |" in text
    assert text.endswith(f"{role_docs.END}\n\nAfter.\n") and "old" not in text
