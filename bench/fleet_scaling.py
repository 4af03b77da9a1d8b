"""Probe + drift report across 1, 4 and 8 SSH hosts (network namespaces): wall time, and the 8-vs-1 ratio.

Goal: 8 hosts take at most 1.25x the time of one (the hosts are probed in parallel, forks=16 in ansible.cfg).
The hosts are namespaces of this machine: their sshd and modules share its CPUs, so the share of CPU busy
is printed with each size (near 100 % means the controller's cores, not Ansible, bound the ratio).
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


def cpu_jiffies() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs (/proc/stat): the fleet's sshd and modules run on this machine too."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def fleet_report_run(inventory: Path, hosts: list[str], reports: Path) -> tuple[float, float]:
    """Wall seconds of one probe + drift report run, and the share of all CPUs busy meanwhile."""
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ROSENBLATT_REPORTS=str(reports),
                       PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    busy, total = cpu_jiffies()
    started = time.monotonic()
    subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/fleet-report.yml", "--limit",
                    ",".join([*hosts, "localhost"])], cwd=REPO, env=environment, check=True, capture_output=True)
    seconds = time.monotonic() - started
    busy_after, total_after = cpu_jiffies()
    return seconds, (busy_after - busy) / max(total_after - total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per fleet size; the median is reported")
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as scratch, NetnsFleet(Path(scratch) / "fleet", count=8) as fleet:
        inventory = fleet.inventory(Path(scratch) / "inventory")
        names = [host.name for host in fleet.hosts]
        fleet_report_run(inventory, names, Path(scratch) / "reports")  # warm-up: ssh control sockets, caches
        # Sizes in turn, not one after the other: a slower stretch of the machine then weighs on every size.
        sizes = (1, 4, 8)
        runs_by_size: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
        for _ in range(repeat):
            for size in sizes:
                runs_by_size[size].append(fleet_report_run(inventory, names[:size], Path(scratch) / "reports"))
        medians = {}
        for size, runs in runs_by_size.items():
            medians[size] = statistics.median(seconds for seconds, _ in runs)
            busy = statistics.median(share for _, share in runs)
            print(f"{size} host(s): median {medians[size]:.2f} s over {repeat} runs "
                  f"({', '.join(f'{seconds:.2f}' for seconds, _ in runs)}); CPUs busy {busy:.0%} "
                  f"of {os.cpu_count()}")
        print(f"ratio 4 vs 1: {medians[4] / medians[1]:.2f}")
        print(f"ratio 8 vs 1: {medians[8] / medians[1]:.2f} (goal <= 1.25)")


if __name__ == "__main__":
    main()
