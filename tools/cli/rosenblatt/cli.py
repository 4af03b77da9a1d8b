"""rosenblatt: the pipeline's stages and fleet operations from one command.

Every command runs the same playbooks a user runs with ansible-playbook (no logic lives only here),
through ansible-runner, keeping each run's events and artifacts under runs/. Inventory edits are the
exception: they change files on the controller and touch no board.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosenblatt import __version__
from rosenblatt.project import project_dir, use_collections
from rosenblatt.run import Exit, run_playbook

EPILOG = ("exit codes: " + "; ".join(f"{code.value} {code.meaning}" for code in Exit) +
          ".\nRuns are kept under runs/<time>-<command>/ (events, stdout, artifacts).")


# The virtual board has its own inventory; everything else defaults to the real fleet.
DEFAULT_INVENTORY = {"virtual": "tests/inventory/virtual"}
DEFAULT_VIRTUAL_BOARD = "virtual-uefi"


class BadInput(Exception):
    """Refused before anything ran; the message names the bad value."""


def _percent_or_count(value: str) -> str:
    if not re.fullmatch(r"[1-9]\d*%?", value) or (value.endswith("%") and int(value[:-1]) > 100):
        raise argparse.ArgumentTypeError(f"{value!r} is not a host count (e.g. 2) or a percentage from 1% to 100%")
    return value


def _extra_vars(value: str) -> dict[str, Any]:
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"{value!r} is not a JSON object: {error}") from error
        if isinstance(parsed, dict):
            return parsed
    key, equals, setting = value.partition("=")
    if not equals or not re.fullmatch(r"[A-Za-z_]\w*", key):
        raise argparse.ArgumentTypeError(f"{value!r} is neither KEY=VALUE nor a JSON object")
    return {key: setting}


def _become_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("BECOME password: ")
    return sys.stdin.readline().rstrip("\n")


def _percent(value: str) -> int:
    number = value.rstrip("%")
    if not number.isdigit() or int(number) > 100:
        raise argparse.ArgumentTypeError(f"{value!r} is not a percentage from 0 to 100")
    return int(number)


# Options every command takes, before or after its name (`rosenblatt --check fleet status` and
# `rosenblatt fleet status --check` are the same); given after it, they land under LATE + name.
LATE = "late_"


def _add_global_options(parser: argparse.ArgumentParser, late: bool) -> None:
    def option(*flags: str, dest: str, **settings: Any) -> None:
        if late:
            settings["default"] = argparse.SUPPRESS
        parser.add_argument(*flags, dest=LATE + dest if late else dest, **settings)

    option("-i", "--inventory", dest="inventory", type=Path,
           help="inventory folder (default: inventory/; for virtual: tests/inventory/virtual)")
    option("--json", dest="json", action="store_true", help="print the result as JSON on stdout (progress on stderr)")
    option("--check", dest="check", action="store_true", help="show the plan; change nothing (ansible --check)")
    option("--confirm", dest="confirm", metavar="BOARDS",
           help="comma-separated shared boards this run may change (rosenblatt_confirm)")
    option("-K", "--ask-become-pass", dest="ask_become_pass", action="store_true",
           help="ask for the sudo password of the boards (read from standard input when it is no terminal); it "
                "is never written to runs/ or reports/")
    option("--vault-password-file", dest="vault_password_file", type=Path, metavar="FILE",
           help="file with the vault password of an encrypted inventory, as ansible-playbook takes it")
    option("-e", "--extra-vars", dest="extra_vars", action="append", type=_extra_vars, metavar="VARS",
           help="KEY=VALUE or a JSON object, as ansible-playbook -e (repeatable; the command's own options win)")


def _merge_late_options(args: argparse.Namespace) -> argparse.Namespace:
    """Options given after the command's name join (-e) or replace (the rest) those given before it."""
    for name, value in list(vars(args).items()):
        if name.startswith(LATE):
            delattr(args, name)
            setattr(args, name[len(LATE):], args.extra_vars + value if name == LATE + "extra_vars" else value)
    return args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rosenblatt", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rosenblatt {__version__}")
    _add_global_options(parser, late=False)
    parser.set_defaults(extra_vars=[])
    late = argparse.ArgumentParser(add_help=False)
    _add_global_options(late, late=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    provision = commands.add_parser("provision", parents=[late],
                                    help="build the disk image and write it to each board's media")
    provision.add_argument("boards", nargs="+", metavar="BOARD")

    kernel = commands.add_parser("kernel", help="kernel stage").add_subparsers(dest="action", required=True)
    kernel.add_parser("build", parents=[late], help="build the kernel artifact on the controller")

    rollout = commands.add_parser("rollout", help="roll a new artifact out across the fleet")
    rollout_what = rollout.add_subparsers(dest="action", required=True)
    rollout_kernel = rollout_what.add_parser("kernel", parents=[late],
                                             help="trial-boot the kernel artifact, canary first, in batches")
    rollout_kernel.add_argument("--canary", metavar="BOARD", help="the board that goes first, alone")
    rollout_kernel.add_argument("--batch", type=_percent_or_count, default="1",
                                help="boards per batch after the canary: N or PCT%% (default 1)")
    rollout_kernel.add_argument("--max-fail", type=_percent, default=0, metavar="PCT",
                                help="halt when more than PCT%% of a batch fails (default 0)")
    rollout_kernel.add_argument("--limit", nargs="+", default=[], metavar="BOARD", help="only these boards")
    rollout_kernel.add_argument("--artifact", type=Path, metavar="FOLDER",
                                help="kernel artifact folder (rosenblatt kernel build prints it)")

    rollback = commands.add_parser("rollback", parents=[late], help="boot a board back into its previous kernel")
    rollback.add_argument("board", metavar="BOARD")
    rollback.add_argument("--to", metavar="RELEASE", help="installed release to go back to (default: the previous one)")

    adopt = commands.add_parser("adopt", parents=[late],
                                help="make a GRUB whose distribution generates grub.cfg serve our kernels too "
                                     "(recorded, reversible; --check lists each file)")
    adopt.add_argument("boards", nargs="+", metavar="BOARD")
    adopt.add_argument("--release", action="store_true",
                       help="give the GRUB back: the recorded files put back byte for byte, grub.cfg regenerated")

    verify = commands.add_parser("verify", parents=[late], help="run the verification inference and report it")
    verify.add_argument("boards", nargs="+", metavar="BOARD")

    bench = commands.add_parser("bench", parents=[late],
                                help="measure a board (docs/hardware-validation.md B1-B3): NPU probe, op test, "
                                     "llama-bench and perplexity per configuration, the MIN_BATCH sweep; report "
                                     "the defaults the figures pick (a shared board needs --confirm)")
    bench.add_argument("boards", nargs="+", metavar="BOARD")

    fleet = commands.add_parser("fleet", help="fleet operations").add_subparsers(dest="action", required=True)
    fleet.add_parser("status", parents=[late],
                     help="probe every board and write the drift report (Markdown, JSON, HTML)")

    board = commands.add_parser("board", help="edit the inventory").add_subparsers(dest="action", required=True)
    add = board.add_parser("add", parents=[late], help="add a board to the inventory")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--address", required=True, help="host name or IP address the controller reaches it at")
    add.add_argument("--model", required=True, help="board model, e.g. radxa-rock-5-itx-plus")
    add.add_argument("--ram-gib", type=int, required=True, help="RAM in GiB")
    add.add_argument("--port", type=int, help="SSH port (default 22)")
    add.add_argument("--boot-media", default="nvme", help="emmc, nvme, sd, ... (default nvme)")
    add.add_argument("--boot-chain", default="uefi-grub",
                     help="how it boots (docs/rollout.md, Boot chains): uefi-grub-distribution for a board its "
                          "distribution installed, uefi-grub or uboot-extlinux for our image (default uefi-grub; the "
                          "inventory check refuses a chain without a descriptor)")
    add.add_argument("--distribution", default="debian", help="distribution id (default debian: our image)")
    add.add_argument("--shared", action="store_true", help="the board serves other work: changes need --confirm")
    add.add_argument("--group", default="rk3588", help="inventory group (default rk3588)")
    remove = board.add_parser("remove", parents=[late], help="remove a board from the inventory")
    remove.add_argument("name", metavar="NAME")

    virtual = commands.add_parser("virtual", parents=[late], help="the virtual board (QEMU)")
    virtual.add_argument("action", choices=["up", "down"])
    virtual.add_argument("boards", nargs="*", default=[DEFAULT_VIRTUAL_BOARD], metavar="BOARD",
                         help=f"virtual boards (default {DEFAULT_VIRTUAL_BOARD}: edk2 + GRUB, as boltzmann boots)")
    virtual.add_argument("--fresh", action="store_true",
                         help="up: discard the board's changes and boot from the image as built")
    return parser


def _known_boards(inventory: Path, boards: Sequence[str]) -> None:
    from rosenblatt.inventory_edit import host_names  # noqa: PLC0415

    known = host_names(inventory)
    unknown = [board for board in boards if board not in known]
    if unknown:
        raise BadInput(f"unknown board {', '.join(unknown)} (inventory {inventory} has: {', '.join(known) or 'none'})")


def _refuse_secrets(args: argparse.Namespace, extravars: dict[str, Any]) -> None:
    """ansible-runner writes extra vars to the run folder: secrets go by prompt or vault, never by -e."""
    from ansible_collections.rosenblatt.pipeline.plugins.module_utils.role_inputs import SECRET_NAME  # noqa: PLC0415

    secrets = sorted(name for name in extravars if SECRET_NAME.search(name))
    if secrets:
        raise BadInput(f"-e {', '.join(secrets)}: a secret given with -e would be written to the run folder under "
                       "runs/; use --ask-become-pass, or a vault (--vault-password-file) for other secrets")
    if args.vault_password_file is not None and not args.vault_password_file.is_file():
        raise BadInput(f"--vault-password-file {args.vault_password_file}: no such file")


def _stage_key(args: argparse.Namespace) -> str:
    return f"{args.command}-{args.action}" if getattr(args, "action", None) else args.command


# What a command's own options make: the hosts (--limit) and tags; extra vars are added in place.
Plan = Callable[[argparse.Namespace, Path, dict[str, Any]], tuple[list[str], list[str]]]


def _on_boards(args: argparse.Namespace, inventory: Path, extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    return args.boards, []


def _adopt(args: argparse.Namespace, inventory: Path, extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    if args.release:
        extravars["boot_adoption_state"] = "released"
    return args.boards, []


def _rollback(args: argparse.Namespace, inventory: Path, extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    if args.to:
        extravars["kernel_rollout_rollback_to"] = args.to
    return [args.board], []


def _rollout_kernel(args: argparse.Namespace, inventory: Path,
                    extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    if args.canary:
        _known_boards(inventory, [args.canary])
    extravars.update(rollout_canary=args.canary or "", rollout_batch=args.batch,
                     rollout_max_fail_percentage=args.max_fail)
    if args.artifact is None:
        raise BadInput("rollout kernel needs --artifact FOLDER (rosenblatt kernel build prints it)")
    if not (args.artifact / "manifest.json").is_file():
        raise BadInput(f"--artifact {args.artifact}: not a kernel artifact (no manifest.json)")
    extravars["kernel_rollout_artifact"] = str(args.artifact.resolve())
    return args.limit, []


def _virtual(args: argparse.Namespace, inventory: Path, extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    up = args.action == "up"
    extravars["virtual_board_state"] = "started" if up else "stopped"
    if args.fresh:
        extravars["virtual_board_fresh"] = True
    return args.boards, [] if up else ["virtual"]  # stopping needs no image


def _everything(args: argparse.Namespace, inventory: Path, extravars: dict[str, Any]) -> tuple[list[str], list[str]]:
    return [], []


@dataclass(frozen=True)
class Stage:
    """A command that runs playbooks: which ones, in order (a failure stops the sequence), and its plan."""

    playbooks: tuple[str, ...]
    plan: Plan = _everything
    fleet_report: bool = False  # the outcome carries reports/fleet-latest.*


# Every command that runs playbooks, keyed by command and action (`rosenblatt rollout kernel`: rollout-kernel).
STAGES: dict[str, Stage] = {
    "provision": Stage(("playbooks/flash-image.yml",), _on_boards),  # builds or finds the image first
    "kernel-build": Stage(("playbooks/kernel.yml",)),
    "rollout-kernel": Stage(("playbooks/flash.yml",), _rollout_kernel),
    "rollback": Stage(("playbooks/rollback.yml",), _rollback),
    "adopt": Stage(("playbooks/adopt.yml",), _adopt),
    "verify": Stage(("playbooks/verify.yml",), _on_boards),
    "bench": Stage(("playbooks/bench.yml",), _on_boards),
    "fleet-status": Stage(("playbooks/fleet-report.yml",), fleet_report=True),
    "virtual-up": Stage(("playbooks/virtual-board.yml",), _virtual),
    "virtual-down": Stage(("playbooks/virtual-board.yml",), _virtual),
}


def _run_stage(args: argparse.Namespace, project: Path, inventory: Path) -> dict[str, Any]:
    key = _stage_key(args)
    stage = STAGES[key]
    extravars: dict[str, Any] = {}
    for given in args.extra_vars:
        extravars.update(given)
    _refuse_secrets(args, extravars)
    limit, tags = stage.plan(args, inventory, extravars)
    _known_boards(inventory, limit)
    if args.confirm:
        extravars["rosenblatt_confirm"] = args.confirm
    missing = [playbook for playbook in stage.playbooks if not (project / playbook).is_file()]
    if missing:
        raise BadInput(f"{key.replace('-', ' ')}: {', '.join(missing)} is not in this checkout")
    become_password = _become_password() if args.ask_become_pass else None
    runs_dir = Path(os.environ.get("ROSENBLATT_RUNS", project / "runs"))
    progress = sys.stderr if args.json else sys.stdout
    results = []
    for playbook in stage.playbooks:
        result = run_playbook(project, playbook, inventory=inventory, runs_dir=runs_dir, label=key, limit=limit,
                              tags=tags, extravars=extravars, check=args.check, progress=progress,
                              become_password=become_password, vault_password_file=args.vault_password_file)
        results.append(result)
        if result.exit_code != Exit.OK:
            break
    exit_code = results[-1].exit_code
    outcome: dict[str, Any] = {"command": key.replace("-", " "), "exit_code": exit_code,
                               "runs": [result.as_dict() for result in results]}
    if stage.fleet_report and exit_code in (Exit.OK, Exit.UNREACHABLE):
        reports = Path(os.environ.get("ROSENBLATT_REPORTS", project / "reports"))
        outcome["report"] = json.loads((reports / "fleet-latest.json").read_text())
        outcome["report_files"] = [str(reports / f"fleet-latest.{kind}") for kind in ("md", "json", "html")]
    return outcome


def _print_human(outcome: dict[str, Any]) -> None:
    for run in outcome.get("runs", []):
        for failure in run["failures"]:
            print(f"failed: {failure}")
        print(f"{run['playbook']}: {run['status']} (run kept in {run['run_dir']})")
    report = outcome.get("report")
    if report:
        print()
        for row in report["hosts"]:
            details = "; ".join(row["drift"]) if row["drift"] else ""
            kernel = row.get("kernel_release") or "-"
            verdict = row.get("npu_verdict") or "-"
            print(f"{row['host']:<16} {row['status']:<11} kernel {kernel:<24} NPU {verdict:<16} {details}")
        counts = report["counts"]
        print(f"\n{counts['in-sync']} in sync, {counts['drift']} drifted, {counts['unreachable']} unreachable; "
              f"report: {', '.join(outcome['report_files'])}")
    for key in ("written", "removed"):
        for path in outcome.get(key, []):
            print(f"{key}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _merge_late_options(_parser().parse_args(argv))
    outcome: dict[str, Any]
    try:
        project = project_dir()
        use_collections(project)
        inventory = (args.inventory or project / DEFAULT_INVENTORY.get(args.command, "inventory")).resolve()
        if not inventory.exists():
            raise BadInput(f"inventory {inventory} does not exist")
        if args.command == "board":
            from rosenblatt.inventory_edit import InventoryError, NewBoard, add_board, remove_board  # noqa: PLC0415

            try:
                if args.action == "add":
                    board = NewBoard(args.name, args.address, args.model, args.ram_gib, args.boot_media,
                                     args.boot_chain, args.distribution, args.shared, args.port)
                    outcome = add_board(inventory, board, args.group)
                else:
                    outcome = remove_board(inventory, args.name)
            except InventoryError as error:
                raise BadInput(str(error)) from error
            outcome.update(command=f"board {args.action}", exit_code=Exit.OK)
        else:
            outcome = _run_stage(args, project, inventory)
    except BadInput as error:
        outcome = {"command": _stage_key(args).replace("-", " "), "exit_code": Exit.BAD_INPUT, "error": str(error)}
    except FileNotFoundError as error:
        outcome = {"command": _stage_key(args).replace("-", " "), "exit_code": Exit.ANSIBLE_ERROR, "error": str(error)}
    if args.json:
        print(json.dumps(outcome, indent=2))
    elif "error" in outcome:
        print(f"rosenblatt: {outcome['error']}", file=sys.stderr)
    else:
        _print_human(outcome)
    return outcome["exit_code"]
