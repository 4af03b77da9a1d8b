"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN are YAML that ansible-doc can read (a colon in a
sentence once made board_facts' unreadable, and only ansible-lint's log said so)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

PLUGINS = Path(__file__).resolve().parents[2] / "collections/ansible_collections/rosenblatt/pipeline/plugins"
FILES = sorted(path for kind in ("modules", "lookup", "filter", "action", "callback")
               for path in (PLUGINS / kind).glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_documentation_blocks_are_yaml(path: Path) -> None:
    names = {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    blocks = {node.targets[0].id: node.value.value for node in ast.parse(path.read_text()).body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id in names and isinstance(node.value, ast.Constant)}
    if path.parent.name in {"modules", "lookup"}:
        assert "DOCUMENTATION" in blocks, path
    for name, text in blocks.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as error:
            pytest.fail(f"{path.name} {name}: {error}")


def test_collection_readme_names_every_plugin() -> None:
    readme = (PLUGINS.parent / "README.md").read_text()
    missing = [path.stem for path in FILES if path.parent.name != "filter" and f"`{path.stem}`" not in readme]
    assert not missing, f"collection README does not name: {missing}"
