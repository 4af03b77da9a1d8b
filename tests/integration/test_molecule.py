"""Every role's molecule scenarios (converge, idempotence, verify) on the controller; what they share is in
.config/molecule/config.yml and tests/molecule/."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import BIN, REPO

SCENARIOS = sorted(REPO.glob("roles/*/molecule/*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s.parts[-4]}/{s.parts[-2]}" for s in SCENARIOS])
def test_molecule_scenario(scenario, tmp_path) -> None:
    role = scenario.parents[2]
    # molecule's own default names the ephemeral folder (where scenarios keep their scratch folder) after the
    # role alone: a folder of this test's keeps two checkouts testing at once apart, and starts every run empty.
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}",
                       NO_COLOR="1", ANSIBLE_NOCOLOR="1", MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"))
    result = subprocess.run([str(BIN / "molecule"), "test", "--scenario-name", scenario.parent.name], cwd=role,
                            env=environment, capture_output=True, text=True, timeout=900, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "idempotence: Executed: Successful" in output
    assert "verify: Executed: Successful" in output


def test_there_is_a_scenario() -> None:
    assert SCENARIOS, "no role has a molecule scenario"
