"""The kernel rollout exercised on a virtual board, fault cases first, as one sequence per boot chain
(each case starts from what the one before left). Every case checks what the board was left with.

Kernels: Debian sid's arm64 7.2.13 kernel in the artifact layout (tools/test_inputs.py debian-kernel), and
variants of it made here: a changed file, a missing file, a 32-bit ARM Image (a real Debian armhf kernel).
The kernel panics with init=/bin/false on its command line, and fails verification when the rocket module
is required (Debian's kernel has no NPU driver). Timings are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import read_manifest, write_manifest
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.virtual_board import qmp
from tests.conftest import BIN, REPO, played, real_input, rosenblatt_ok
from tests.virtual.conftest import INVENTORY, VirtualBoard, stop_board

BOOT_STATE = ("cd /boot; ls -1d */ | sort; sha256sum grub/grub.cfg extlinux/extlinux.conf; "
              "grub-editenv grub/grubenv list; ls -1 /lib/modules | sort")


def variant(base: Path, dest: Path, change: Callable[[Path], None], *, remanifest: bool) -> Path:
    """A copy of an artifact (hard links; changed files are replaced, never written through), changed."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["cp", "-al", str(base), str(dest)], check=True)
    info = {key: value for key, value in read_manifest(str(dest)).items() if key not in ("files", "links")}
    change(dest)
    if remanifest:
        (dest / "manifest.json").unlink()
        write_manifest(str(dest), info)
    return dest


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


class Rollout:
    def __init__(self, board: VirtualBoard, artifact: Path, reports: Path) -> None:
        self.board, self.artifact, self.reports = board, artifact, reports
        self.release = read_manifest(str(artifact))["release"]
        self.timings: dict[str, float] = {}
        self.cases: list[str] = []

    def flash_args(self, artifact: Path, *extra: str) -> list[str]:
        return ["playbooks/flash.yml", "-e", f"kernel_rollout_artifact={artifact}",
                "-e", f"rosenblatt_reports_dir={self.reports}", *extra]

    def flash(self, artifact: Path | None = None, *extra: str, case: str = "") -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.board.playbook(*self.flash_args(artifact or self.artifact, *extra), timeout=3600)
        if case:
            self.timings[case] = time.monotonic() - started
        return result

    def cli(self, *args: str, case: str) -> str:
        """A `rosenblatt` command on this board that must succeed; what its playbooks printed."""
        started = time.monotonic()
        outcome = rosenblatt_ok("-i", INVENTORY, "-e", f"rosenblatt_reports_dir={self.reports}", *args, timeout=3600)
        self.timings[case] = time.monotonic() - started
        assert outcome["runs"][-1]["hosts"][self.board.host]["changed"] > 0, outcome
        return played(outcome)

    def flash_in_background(self, marker: str) -> subprocess.Popen:
        """The play, with a marker in its command line: Ansible's workers run in sessions of their own, so
        only the marker finds them all when the test kills the controller."""
        environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                           PATH=f"{BIN}:{os.environ.get('PATH', '')}")
        return subprocess.Popen([str(BIN / "ansible-playbook"), "-i", INVENTORY, "--limit", self.board.host,
                                 *self.flash_args(self.artifact, "-e", f"rollout_test_run={marker}")],
                                cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def boot_state(self) -> str:
        return self.board.command("sh", "-c", BOOT_STATE + "; true")

    def running(self) -> str:
        return self.board.command("uname", "-r").strip()

    def report(self) -> dict:
        return json.loads((self.reports / "rollout" / f"{self.board.host}.json").read_text())

    def boot_json(self) -> dict:
        return json.loads(self.board.command("cat", "/var/lib/rosenblatt/state/boot.json"))

    def loader_configs(self) -> str:
        return self.board.command("cat", "/boot/grub/grub.cfg", "/boot/extlinux/extlinux.conf")

    def note(self, case: str, left: str) -> None:
        self.cases.append(f"{case}: {left}")


def _wait_for_line(process: subprocess.Popen, pattern: str, timeout: float) -> str:
    """Output of the background play up to the first line matching pattern."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
        assert time.monotonic() < deadline, "".join(seen[-40:])
    raise AssertionError("the play ended before %r:\n%s" % (pattern, "".join(seen[-60:])))


def kill_play(marker: str) -> None:
    """SIGKILL the play and its workers, each with its process group (the SSH clients it started)."""
    found = subprocess.run(["pgrep", "--full", marker], capture_output=True, text=True, check=True)
    for pid in map(int, found.stdout.split()):
        with contextlib.suppress(ProcessLookupError):  # gone with an earlier group
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def refused_before_writing(rollout: Rollout, tmp: Path) -> None:
    """Bad artifacts and a full /boot are refused before anything is written on the board."""
    before = rollout.boot_state()
    config_changed = variant(rollout.artifact, tmp / "changed", lambda root: replace_file(
        root / "config", (root / "config").read_bytes() + b"CONFIG_SNEAKED_IN=y\n"), remanifest=False)
    missing = variant(rollout.artifact, tmp / "missing", lambda root: (root / "dtbs/rockchip/rk3588-rock-5-itx.dtb")
                      .unlink(), remanifest=False)
    armhf = real_input("debian-armhf-kernel-image")
    wrong_arch = variant(rollout.artifact, tmp / "armhf", lambda root: replace_file(root / "Image", armhf.read_bytes()),
                         remanifest=True)
    for case, artifact, message in (
            ("sha256 mismatch", config_changed, r"config: is [0-9a-f]{64}, the manifest says [0-9a-f]{64}"),
            ("missing file", missing, r"dtbs/rockchip/rk3588-rock-5-itx\.dtb: missing"),
            ("wrong architecture", wrong_arch, r"Image is a arm kernel, not arm64")):
        result = rollout.flash(artifact)
        assert result.returncode != 0, result.stdout[-3000:]
        assert re.search(message, result.stdout), result.stdout[-3000:]
        assert rollout.boot_state() == before
        rollout.note(f"bad artifact ({case})", "refused on the controller, board untouched")

    available = int(rollout.board.command("df", "--block-size=1", "--output=avail", "/boot").split()[-1])
    filler = max(available - (100 << 20), 0)
    rollout.board.command("fallocate", "--length", str(filler), "/boot/filler")
    try:
        result = rollout.flash()
        assert result.returncode != 0, result.stdout[-3000:]
        assert re.search(r"not enough space for \S+, nothing was written: /boot: \d+ MiB needed", result.stdout), \
            result.stdout[-3000:]
    finally:
        rollout.board.command("rm", "/boot/filler")
    assert rollout.boot_state() == before
    staging = rollout.board.command("sh", "-c", "ls -d /var/lib/rosenblatt/staging 2>/dev/null; true")
    assert staging.strip() == "", staging
    rollout.note("/boot too small", "refused by the plan, nothing written")

    result = rollout.flash(None, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"THE BOARD WILL REBOOT into {rollout.release}" in " ".join(result.stdout.split())
    assert rollout.boot_state() == before
    rollout.note("--check", "plan printed, naming the reboot; board untouched")


def interrupted(rollout: Rollout, known_good: str) -> None:
    """The link cut during the transfer, the controller killed during the install: the loader configs
    never name a partial kernel, and the board boots its known-good kernel."""
    configs = rollout.loader_configs()
    play = rollout.flash_in_background("link-cut")
    _wait_for_line(play, r"TASK \[kernel_rollout : Copy the tarball", 900)
    time.sleep(3)
    socket_path = str(rollout.board.run_dir / "qmp.sock")
    assert "return" in qmp(socket_path, "set_link", {"name": "net0", "up": False})
    try:
        output, _ = play.communicate(timeout=600)
    finally:
        qmp(socket_path, "set_link", {"name": "net0", "up": True})
    assert play.returncode != 0 and "UNREACHABLE" in output, output[-3000:]
    assert rollout.loader_configs() == configs
    rollout.note("link cut during the transfer", "play failed unreachable; loader configs unchanged; partial "
                 "tarball left in staging (replaced by the next run)")

    play = rollout.flash_in_background("killed-during-install")
    _wait_for_line(play, r"TASK \[kernel_rollout : Install the kernel beside", 1800)
    time.sleep(20)
    kill_play("rollout_test_run=killed-during-install")
    play.wait()
    assert rollout.loader_configs() == configs
    assert rollout.release not in configs
    left = rollout.board.command("sh", "-c", f"ls -d /boot/{rollout.release}* /lib/modules/{rollout.release}* "
                                             "2>/dev/null; true").split()
    started = time.monotonic()
    result = subprocess.run([str(BIN / "ansible"), "-i", INVENTORY, rollout.board.host, "-m", "ansible.builtin.reboot",
                             "-a", "reboot_timeout=900"], cwd=REPO, capture_output=True, text=True, timeout=1200,
                            check=False, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
    assert result.returncode == 0, result.stdout[-3000:]
    rollout.timings["reboot"] = time.monotonic() - started
    assert rollout.running() == known_good
    rollout.note("controller killed during the install", "loader configs unchanged; left %s; rebooted into %s"
                 % (", ".join(left) or "nothing", known_good))


def failing_kernels(rollout: Rollout, known_good: str, tmp: Path) -> None:
    """A kernel that panics at boot and one that boots but fails verification: both end on the known-good
    kernel, the release marked bad, the loader default unchanged, the failure reported."""
    result = rollout.flash(None, "-e", "kernel_rollout_cmdline_extra=init=/bin/false", case="panic")
    assert result.returncode != 0, result.stdout[-3000:]
    words = " ".join(result.stdout.split())
    assert f"the board runs {known_good}, not {rollout.release}" in words, words[-3000:]
    assert rollout.running() == known_good
    assert rollout.boot_json()["default"] == known_good and rollout.release in rollout.boot_json()["bad"]
    assert rollout.release not in rollout.loader_configs()
    assert rollout.report()["outcome"] == "rolled-back"
    console = (rollout.board.run_dir / "console.log").read_text(errors="replace")
    assert "Kernel panic - not syncing" in console
    rollout.note("kernel that panics (init=/bin/false)", f"panic= reset it into {known_good}; release marked bad, "
                 "files kept for inspection")

    result = rollout.flash(None)
    assert result.returncode != 0 and "is marked bad on this board" in result.stdout, result.stdout[-3000:]

    # The Debian kernel has no rocket driver: requiring it (the default outside the virtual boards) makes
    # the verification of an otherwise good kernel fail. The staged copy and install of the panic run are reused.
    result = rollout.flash(None, "-e", "kernel_rollout_retry_bad=true", "-e", '{"kernel_rollout_modules": ["rocket"]}',
                           case="verification failure")
    assert result.returncode != 0, result.stdout[-3000:]
    words = " ".join(result.stdout.split())
    assert f"{rollout.release} booted but failed verification: modules load (rocket)" in words, words[-3000:]
    assert rollout.running() == known_good
    report = rollout.report()
    assert report["outcome"] == "rolled-back" and not report["verification"][0]["ok"]
    assert rollout.boot_json()["default"] == known_good
    rollout.note("kernel that fails verification (no rocket module)", f"booted, rebooted into {known_good}; "
                 "release marked bad, files kept for inspection")


def good_kernel(rollout: Rollout, known_good: str) -> None:
    rollout.cli("-e", "kernel_rollout_retry_bad=true", "rollout", "kernel", "--artifact", str(rollout.artifact),
                "--limit", rollout.board.host, case="good rollout")
    assert rollout.running() == rollout.release
    state = rollout.boot_json()
    assert state["default"] == rollout.release
    assert [entry["release"] for entry in state["entries"]] == [known_good, rollout.release]
    configs = rollout.loader_configs()
    # GRUB ids are linux-<release>: a default starting with a digit would be read as an entry number.
    assert f'set default="linux-{rollout.release}"' in configs and f"default {rollout.release}" in configs
    assert f"/{known_good}/Image" in configs  # the old kernel stays as a fallback entry
    assert "trial-" not in configs
    kernel = json.loads(rollout.board.command("cat", "/var/lib/rosenblatt/state/kernel.json"))
    assert kernel["release"] == rollout.release
    report = rollout.report()
    assert report["outcome"] == "committed" and all(check["ok"] for check in report["verification"])
    rollout.timings["good trial boot"] = float(report["trial_boot_seconds"])
    rollout.note("good kernel", f"trial-booted, verified, committed; {known_good} kept as fallback entry")

    # The commit must survive a power cut: off and on again, the loader alone picks the kernel.
    stop_board(rollout.board.host)
    rosenblatt_ok("-i", INVENTORY, "virtual", "up", rollout.board.host, timeout=900)
    assert rollout.running() == rollout.release
    rollout.note("power off and on after the commit", f"the loader booted {rollout.release}")

    result = rollout.flash(None)
    assert result.returncode == 0 and re.search(rf"{rollout.board.host}\s*:.*changed=0", result.stdout), \
        result.stdout[-3000:]
    assert "already running and committed: nothing to do" in " ".join(result.stdout.split())
    rollout.note("re-run with the same artifact", "no-op, changed=0")


def rollback(rollout: Rollout, known_good: str) -> None:
    result = rollout.board.playbook("playbooks/rollback.yml", "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"would make {known_good} the default instead of {rollout.release}; THE BOARD WILL REBOOT" in \
        " ".join(result.stdout.split())
    assert rollout.running() == rollout.release
    rollout.cli("rollback", rollout.board.host, case="rollback")
    assert rollout.running() == known_good
    assert rollout.boot_json()["default"] == known_good
    rollout.note("rosenblatt rollback", f"back on {known_good}, {rollout.release} still installed")


def start(board: VirtualBoard, tmp: Path) -> tuple[Rollout, str]:
    rollout = Rollout(board, real_input("debian-kernel"), tmp / "reports")
    known_good = rollout.running()
    assert known_good != rollout.release
    return rollout, known_good


def summary(rollout: Rollout) -> None:
    print("\n%s (%s): %d cases" % (rollout.board.host, rollout.release, len(rollout.cases)))
    for case in rollout.cases:
        print("  " + case)
    print("  timings: " + ", ".join("%s %.0f s" % item for item in rollout.timings.items()))


def run_good_path(board: VirtualBoard, tmp: Path) -> Rollout:
    """What `make test` runs: refusals, a good rollout, the re-run, rollback.yml."""
    rollout, known_good = start(board, tmp)
    refused_before_writing(rollout, tmp)
    good_kernel(rollout, known_good)
    rollback(rollout, known_good)
    summary(rollout)
    return rollout


def run_faults(board: VirtualBoard, tmp: Path) -> Rollout:
    """The slow tier, on a fresh board: every case, faults first."""
    rollout, known_good = start(board, tmp)
    refused_before_writing(rollout, tmp)
    interrupted(rollout, known_good)
    failing_kernels(rollout, known_good, tmp)
    good_kernel(rollout, known_good)
    rollback(rollout, known_good)
    summary(rollout)
    return rollout
