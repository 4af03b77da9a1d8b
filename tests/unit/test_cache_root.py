"""The cache root: one rule for the roles (the cache_dir lookup), the tools and the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.cache_root import cache_root

REPO = Path(__file__).resolve().parents[2]


def test_the_environment_variable_wins_over_home() -> None:
    assert cache_root({"ROSENBLATT_CACHE": "/srv/cache", "HOME": "/home/u"}) == Path("/srv/cache")
    assert cache_root({"HOME": "/home/u"}) == Path("/home/u/.cache/rosenblatt")
    assert cache_root({"ROSENBLATT_CACHE": "", "HOME": "/home/u"}) == Path("/home/u/.cache/rosenblatt")


def test_roles_see_the_same_folder_through_the_lookup(tmp_path: Path) -> None:
    environment = {"ROSENBLATT_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "ansible.builtin.debug", "-a",
         "msg={{ lookup('rosenblatt.pipeline.cache_dir', 'virtual-board', 'run', 'boltzmann') }}"],
        cwd=REPO, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(tmp_path / "cache/virtual-board/run/boltzmann") in result.stdout
