"""The probe modules and the fleet report, run through ansible-playbook as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.rknpu_probe import probe
from tests.conftest import BIN, REPO, run_playbook
from tests.unit.sysroot_tree import Tree, kernel, load_rocket, rk3588_board

LOCAL = "tests/inventory/local"


def test_probe_on_this_machine_gives_a_clean_verdict() -> None:
    result = run_playbook("-i", LOCAL, "playbooks/probe.yml", "-e", '{"npu_probe_expected_verdicts": ["no-npu-in-dt"]}')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "controller: NPU no-npu-in-dt" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_probe_fails_when_the_verdict_is_not_expected() -> None:
    result = run_playbook("-i", LOCAL, "playbooks/probe.yml", "-e", '{"npu_probe_expected_verdicts": ["ready"]}')
    assert result.returncode != 0
    assert "controller: NPU verdict no-npu-in-dt, expected one of ready" in result.stdout


def test_probe_in_check_mode_changes_nothing() -> None:
    result = run_playbook("-i", LOCAL, "playbooks/probe.yml", "--check")
    assert result.returncode == 0, result.stdout
    assert "changed=0" in result.stdout.split("PLAY RECAP")[1]


def test_probe_module_reads_a_board_tree(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "board")
    kernel(tree)
    rk3588_board(tree, status="disabled")
    load_rocket(tree)
    result = run_playbook("-i", LOCAL, "playbooks/probe.yml", "-e", f"npu_probe_root={tree.root}",
                          "-e", '{"npu_probe_expected_verdicts": ["dt-disabled"]}')
    assert result.returncode == 0, result.stdout
    assert "controller: NPU dt-disabled" in result.stdout
    assert "kernel 7.2.13-rosenblatt" in result.stdout


def board_facts(arguments: str) -> dict:
    """ansible_facts of one board_facts run on the controller."""
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    result = subprocess.run([str(BIN / "ansible"), "-i", LOCAL, "controller", "-m", "rosenblatt.pipeline.board_facts",
                             "-a", arguments], cwd=REPO, env=environment, capture_output=True, text=True, check=False)
    assert result.stdout.startswith("controller | SUCCESS => "), result.stdout + result.stderr
    return json.loads(result.stdout.split(" => ", 1)[1])["ansible_facts"]


def test_board_facts_probes_the_npu_in_the_same_run_when_asked(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "board")
    kernel(tree)
    rk3588_board(tree, status="disabled")
    load_rocket(tree)
    npu_probe_path = str(tmp_path / "no-npu-probe")
    facts = board_facts(f"root={tree.root} npu_probe_path={npu_probe_path}")
    # what rknpu_facts returns for the same tree, through the same JSON
    assert facts["rknpu"] == json.loads(json.dumps(probe(root=str(tree.root), npu_probe_path=npu_probe_path)))
    assert facts["rknpu"]["verdict"] == "dt-disabled"
    assert facts["board"]["kernel_release"] == facts["rknpu"]["kernel_release"] == "7.2.13-rosenblatt"
    assert set(board_facts(f"root={tree.root}")) == {"board"}


def test_fleet_report(reports_dir: Path) -> None:
    result = run_playbook("-i", LOCAL, "playbooks/fleet-report.yml", env={"ROSENBLATT_REPORTS": str(reports_dir)})
    assert result.returncode == 0, result.stdout
    report = json.loads((reports_dir / "fleet-latest.json").read_text())
    [row] = report["hosts"]
    assert row["host"] == "controller"
    assert row["npu_verdict"] == "no-npu-in-dt"
    assert row["boot_chain"]
    markdown = (reports_dir / "fleet-latest.md").read_text()
    line = next(line for line in markdown.splitlines() if line.startswith("| controller |"))
    assert f"| {row['kernel_release']} |" in line
    assert "| **no-npu-in-dt** |" in line
    stamped = sorted(reports_dir.glob("fleet-2*.md"))
    assert len(stamped) == 1 and stamped[0].read_text() == markdown
    assert (reports_dir / "fleet-latest.html").read_text().count("<tr><td>controller</td>") == 1
