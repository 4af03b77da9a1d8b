"""Probe + drift report across 1, 4 and 8 SSH hosts (network namespaces): wall time, and the 8-vs-1 ratio.

Goal: 8 hosts take at most 1.5x the time of one (the hosts are probed in parallel, forks=16 in ansible.cfg).
Run as root from the repository: `.venv/bin/python bench/fleet_scaling.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.netns_fleet import NetnsFleet  # noqa: E402


def fleet_report_seconds(inventory: Path, hosts: list[str], reports: Path) -> float:
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ROSENBLATT_REPORTS=str(reports),
                       PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    started = time.monotonic()
    subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/fleet-report.yml", "--limit",
                    ",".join([*hosts, "localhost"])], cwd=REPO, env=environment, check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per fleet size; the median is reported")
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as scratch, NetnsFleet(Path(scratch) / "fleet", count=8) as fleet:
        inventory = fleet.inventory(Path(scratch) / "inventory")
        names = [host.name for host in fleet.hosts]
        fleet_report_seconds(inventory, names, Path(scratch) / "reports")  # warm-up: ssh control sockets, caches
        medians = {}
        for size in (1, 4, 8):
            times = [fleet_report_seconds(inventory, names[:size], Path(scratch) / "reports") for _ in range(repeat)]
            medians[size] = statistics.median(times)
            print(f"{size} host(s): median {medians[size]:.2f} s over {repeat} runs "
                  f"({', '.join(f'{t:.2f}' for t in times)})")
        print(f"ratio 4 vs 1: {medians[4] / medians[1]:.2f}")
        print(f"ratio 8 vs 1: {medians[8] / medians[1]:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
