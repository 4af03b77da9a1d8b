"""Fleet operations on 8 SSH hosts in network namespaces: the drift report after a partial rollout."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import LLAMA_CPP_COMMIT
from tests.conftest import real_input, rosenblatt, run_playbook
from tests.support.netns_fleet import NetnsFleet

PINS = {"kernel": "v7.2.13", "llama_cpp": LLAMA_CPP_COMMIT,
        "model": "6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsFleet]:
    with NetnsFleet(tmp_path_factory.mktemp("fleet"), count=8) as hosts:
        yield hosts


def record(host_state: Path, component: str, **fields: str) -> None:
    (host_state / f"{component}.json").write_text(json.dumps({"component": component, **fields}))


def test_drift_report_after_a_partial_rollout(fleet: NetnsFleet, tmp_path: Path) -> None:
    running = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout.strip()
    for host in fleet.hosts:
        for stale in host.state_dir.glob("*.json"):
            stale.unlink()
    # Boards 1-3 took the new kernel and everything else pinned; 4-6 run an older kernel build; 7 has an
    # unreadable kernel record; 8 cannot be reached.
    for host in fleet.hosts[:6]:
        record(host.state_dir, "runtime", llama_cpp_ref=PINS["llama_cpp"], backend_version="0.1.0")
        record(host.state_dir, "model", sha256=PINS["model"])
    for host in fleet.hosts[:3]:
        record(host.state_dir, "kernel", release=running, source_ref=PINS["kernel"], artifact_sha256="a" * 64)
        record(host.state_dir, "verify", result="passed", generated="20261124T090000Z")
    for host in fleet.hosts[3:6]:
        record(host.state_dir, "kernel", release=running, source_ref="v7.2.12", artifact_sha256="b" * 64)
    (fleet.hosts[6].state_dir / "kernel.json").write_text("{not json")
    inventory = fleet.inventory(tmp_path / "inventory",
                                extra={"npu_probe_expected_verdicts": []})
    inventory_text = (inventory / "hosts.yml").read_text()
    (inventory / "hosts.yml").write_text(inventory_text.replace(fleet.hosts[7].address, "127.201.250.2"))
    reports, runs = tmp_path / "reports", tmp_path / "runs"

    result = rosenblatt("--json", "-i", str(inventory), "fleet", "status",
                        env={"ROSENBLATT_REPORTS": str(reports), "ROSENBLATT_RUNS": str(runs)})
    assert result.returncode == 3, result.stdout + result.stderr  # one board unreachable
    outcome = json.loads(result.stdout)
    rows = {row["host"]: row for row in outcome["report"]["hosts"]}
    assert outcome["report"]["counts"] == {"in-sync": 3, "drift": 4, "unreachable": 1}
    assert [rows[f"board0{n}"]["status"] for n in range(1, 9)] == ["in-sync"] * 3 + ["drift"] * 4 + ["unreachable"]
    assert rows["board04"]["drift"] == ["kernel: built from v7.2.12 (pinned v7.2.13)"]
    assert rows["board01"]["kernel_artifact"] == "a" * 64 and rows["board01"]["verification"] == "passed"
    assert rows["board07"]["problems"] and "kernel.json: not readable JSON" in rows["board07"]["problems"][0]
    assert rows["board07"]["drift"][0].startswith("kernel: not installed by rosenblatt")
    assert "board08: " in " ".join(outcome["runs"][0]["failures"])
    # progress per host and stage went to stderr while it ran; the run's events were kept
    assert "== Probe the NPU and the boot chain" in result.stderr
    assert "board05" in result.stderr
    run_dir = Path(outcome["runs"][0]["run_dir"])
    assert run_dir.parent == runs and list((run_dir / "artifacts").glob("*/job_events/*.json"))
    markdown = (reports / "fleet-latest.md").read_text()
    assert "| board08 | generic-linux | **unreachable** |" in markdown
    assert "- **board04**: kernel: built from v7.2.12 (pinned v7.2.13)" in markdown
    html = (reports / "fleet-latest.html").read_text()
    assert html.count('<td class="drift">drift</td>') == 4 and html.count('<td class="in-sync">') == 3


def _rollout(inventory: Path, tmp_path: Path, *args: str) -> dict:
    kernel = str(real_input("debian-kernel"))
    folders = {"ROSENBLATT_REPORTS": str(tmp_path / "reports"), "ROSENBLATT_RUNS": str(tmp_path / "runs")}
    result = rosenblatt("--json", "-i", str(inventory), "rollout", "kernel", "--artifact", kernel, *args,
                        env=folders, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    outcome = json.loads(result.stdout)
    outcome["attempted"] = sorted(host for host, counts in outcome["runs"][0]["hosts"].items() if counts["failed"])
    return outcome


def test_rolling_rollout_stops_at_the_canary_and_after_a_failed_batch(fleet: NetnsFleet, tmp_path: Path) -> None:
    """The hosts say uefi-grub in the inventory, but their facts (these are namespaces on the controller) show no
    boot loader the rollout can trial-boot through: each host the rollout reaches fails, for a real reason."""
    inventory = fleet.inventory(tmp_path / "inventory", extra={"board_boot_chain": "uefi-grub"})
    canary = _rollout(inventory, tmp_path, "--canary", "board03", "--batch", "4")
    assert canary["attempted"] == ["board03"]  # the canary failed: no other board was touched
    assert "the board boots a chain the rollout does not support" in " ".join(canary["runs"][0]["failures"])

    first_batch = _rollout(inventory, tmp_path, "--batch", "2", "--max-fail", "0")
    assert first_batch["attempted"] == ["board01", "board02"]  # the first batch failed: the rest never started

    # board01 is not a board (the stand-in kind, skipped by the stage): a batch of board01-04 has 3 of 4 failed.
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    hosts["all"]["children"]["rk3588"]["hosts"]["board01"]["board_boot_chain"] = "none"
    hosts_file.write_text(yaml.safe_dump(hosts))
    strict = _rollout(inventory, tmp_path, "--batch", "4", "--max-fail", "50")
    assert strict["attempted"] == ["board02", "board03", "board04"]  # 75 % > 50 %: stopped after the batch
    tolerant = _rollout(inventory, tmp_path, "--batch", "4", "--max-fail", "75")
    # 75 % is tolerated, so the second batch ran; Ansible ends a play whose whole batch failed.
    assert tolerant["attempted"] == [f"board0{n}" for n in range(2, 9)]


def test_report_of_a_limited_run_lists_only_the_boards_it_probed(reports_dir: Path) -> None:
    """The stand-in and the virtual boards in one run, limited to the stand-in: the virtual boards were not
    probed, so the report does not call them unreachable; it does not list them."""
    result = run_playbook("-i", "tests/inventory/local", "-i", "tests/inventory/virtual", "playbooks/fleet-report.yml",
                          "--limit", "controller,localhost", env={"ROSENBLATT_REPORTS": str(reports_dir)})
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((reports_dir / "fleet-latest.json").read_text())
    assert [row["host"] for row in report["hosts"]] == ["controller"]
