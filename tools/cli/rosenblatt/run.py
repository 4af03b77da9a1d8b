"""Running a playbook through ansible-runner: progress per host and stage, a folder per run, an exit code."""

from __future__ import annotations

import contextlib
import enum
import os
import shlex
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class Exit(enum.IntEnum):
    """The CLI's exit codes, for scripts; `rosenblatt --help` and docs/fleet.md print them from here."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    UNREACHABLE = 3
    ANSIBLE_ERROR = 4

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    Exit.OK: "done",
    Exit.FAILED: "a task failed on a host",
    Exit.BAD_INPUT: "refused before anything ran (bad input, unknown board, usage error)",
    Exit.UNREACHABLE: "a host was unreachable (and none failed otherwise)",
    Exit.ANSIBLE_ERROR: "Ansible could not run (syntax error, missing playbook, interrupted)",
}

OUTCOMES = {"runner_on_ok": "ok", "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
            "runner_on_skipped": "skipped"}


@dataclass
class RunResult:
    playbook: str
    run_dir: Path
    rc: int
    status: str
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> Exit:
        if self.rc == 0 and self.status == "successful":
            return Exit.OK
        counts = self.hosts.values()
        if any(host["failed"] for host in counts):
            return Exit.FAILED
        if any(host["unreachable"] for host in counts):
            return Exit.UNREACHABLE
        return Exit.ANSIBLE_ERROR

    def as_dict(self) -> dict[str, Any]:
        return {"playbook": self.playbook, "run_dir": str(self.run_dir), "rc": self.rc, "status": self.status,
                "hosts": self.hosts, "failures": self.failures}


class Progress:
    """Prints one line per stage (play) and per host result as events arrive."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failures: list[str] = []

    def __call__(self, event: Mapping[str, Any]) -> bool:
        data = event.get("event_data", {})
        kind = event.get("event")
        if kind == "playbook_on_play_start":
            self._say(f"== {data.get('play', '?')}")
        elif kind in OUTCOMES:
            outcome = OUTCOMES[kind]
            if kind == "runner_on_ok" and data.get("res", {}).get("changed"):
                outcome = "changed"
            line = f"   {data.get('host', '?'):<16} {outcome:<11} {data.get('task', '')}"
            if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                message = str(data.get("res", {}).get("msg", "")).strip()
                self.failures.append(f"{data.get('host')}: {data.get('task')}: {message}")
                line += f": {message}"
            self._say(line)
        return True  # keep the event in the run's artifacts

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def run_playbook(project: Path, playbook: str, *, inventory: Path, runs_dir: Path, label: str,
                 extravars: Mapping[str, Any] | None = None, limit: Sequence[str] = (), tags: Sequence[str] = (),
                 check: bool = False, progress: TextIO = sys.stdout, become_password: str | None = None,
                 vault_password_file: Path | None = None) -> RunResult:
    """Run one playbook. ansible-runner writes its extravars and passwords into the run folder, so a become
    password goes through a FIFO that ansible-playbook reads once (--become-password-file): never a file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run_dir = runs_dir / f"{stamp}-{label}"
    run_dir.mkdir(parents=True)
    printer = Progress(progress)
    options = ["--check"] if check else []
    if vault_password_file is not None:
        options += ["--vault-password-file", str(vault_password_file)]
    with tempfile.TemporaryDirectory(prefix="rosenblatt-") as private:
        if become_password is not None:
            options += ["--become-password-file", _serve_once(Path(private) / "become", become_password)]
        return _run(project, playbook, run_dir, printer, inventory=inventory, extravars=extravars, limit=limit,
                    tags=tags, options=options)


def _serve_once(fifo: Path, secret: str) -> str:
    """A named pipe that hands `secret` to the first reader; the writer gives up when the pipe is removed."""
    os.mkfifo(fifo, 0o600)

    def write() -> None:
        with contextlib.suppress(OSError), fifo.open("w") as pipe:
            pipe.write(secret + "\n")

    threading.Thread(target=write, daemon=True).start()
    return str(fifo)


def _run(project: Path, playbook: str, run_dir: Path, printer: Progress, *, inventory: Path,
         extravars: Mapping[str, Any] | None, limit: Sequence[str], tags: Sequence[str],
         options: list[str]) -> RunResult:
    import ansible_runner  # noqa: PLC0415 (slow to import; not needed for --help or inventory edits)

    bin_dir = str(Path(sys.executable).parent)  # ansible-playbook of this environment
    runner = ansible_runner.run(
        private_data_dir=str(run_dir), project_dir=str(project), playbook=playbook, inventory=str(inventory),
        envvars={"ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                 "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        extravars=dict(extravars or {}), limit=",".join(limit) or None, tags=",".join(tags) or None,
        cmdline=" ".join(shlex.quote(option) for option in options) or None,
        quiet=True, event_handler=printer)
    stats = runner.stats or {}
    hosts: dict[str, dict[str, int]] = {}
    for key, name in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"), ("dark", "unreachable"),
                      ("skipped", "skipped")):
        for host, count in (stats.get(key) or {}).items():
            hosts.setdefault(host, {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0})[name] = count
    return RunResult(playbook, run_dir, runner.rc, runner.status, hosts, printer.failures)
