"""Fleet operations on 8 SSH hosts in network namespaces: the drift report after a partial rollout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns_fleet import NetnsFleet

CLI = Path(sys.executable).parent / "rosenblatt"
PINS = {"kernel": "v7.2.13", "llama_cpp": "b6000",
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
        record(host.state_dir, "runtime", llama_cpp_tag=PINS["llama_cpp"], backend_version="0.1.0")
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

    result = subprocess.run([str(CLI), "--json", "-i", str(inventory), "fleet", "status"], capture_output=True,
                            text=True, timeout=600, check=False,
                            env={"PATH": f"{CLI.parent}:/usr/bin:/bin", "ROSENBLATT_REPORTS": str(reports),
                                 "ROSENBLATT_RUNS": str(runs), "HOME": str(Path.home())})
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
