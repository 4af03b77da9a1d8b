"""Where the project is, and which playbook each command runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def project_dir() -> Path:
    """$ROSENBLATT_PROJECT, else the checkout this package was installed from (tools/cli/rosenblatt/...)."""
    configured = os.environ.get("ROSENBLATT_PROJECT")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3]
    if not (path / "ansible.cfg").is_file() or not (path / "playbooks").is_dir():
        raise FileNotFoundError(f"{path} is not a rosenblatt checkout (no ansible.cfg and playbooks/): "
                                "set ROSENBLATT_PROJECT")
    return path


def use_collections(project: Path) -> None:
    """Our collection's module_utils (inventory rules) are shared with the CLI, not copied."""
    collections = str(project / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
