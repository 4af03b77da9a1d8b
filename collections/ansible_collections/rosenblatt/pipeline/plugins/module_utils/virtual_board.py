# Copyright: rosenblatt developers
# MIT License
"""The virtual board: qemu-system-aarch64 (virt, cortex-a76, TCG) on a copy-on-write overlay of a disk image.

Booted by edk2 (then GRUB from the EFI system partition, boltzmann's chain) or by U-Boot (then
extlinux.conf from the boot partition). SSH is forwarded to a loopback port, an i6300esb watchdog resets
the machine when it is not fed, and the serial console goes to a file. Start waits for the SSH banner
within a timeout; stop asks the guest to power down (QMP), then terminates QEMU, each within a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

FIRMWARES = ("edk2", "u-boot")
QEMU = "qemu-system-aarch64"


class BoardError(Exception):
    """An expected failure (bad input, boot or stop timeout), reported as is."""


@dataclass(frozen=True)
class Spec:
    name: str
    image: str
    run_dir: str
    firmware: str
    ssh_port: int
    memory_mib: int = 2048
    cpus: int = 2
    edk2_code: str = "/usr/share/AAVMF/AAVMF_CODE.fd"
    edk2_vars: str = "/usr/share/AAVMF/AAVMF_VARS.fd"
    uboot: str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    @property
    def overlay(self) -> str:
        return self.path("disk.qcow2")

    @property
    def pidfile(self) -> str:
        return self.path("qemu.pid")

    @property
    def console_log(self) -> str:
        return self.path("console.log")

    @property
    def qmp_socket(self) -> str:
        return self.path("qmp.sock")

    @property
    def efi_vars(self) -> str:
        return self.path("efivars.fd")


def check_spec(spec: Spec) -> None:
    if spec.firmware not in FIRMWARES:
        raise BoardError("firmware is %r: expected one of %s" % (spec.firmware, ", ".join(FIRMWARES)))
    if not 1024 <= spec.ssh_port <= 65535:
        raise BoardError("ssh_port is %r: expected an unprivileged TCP port, 1024 to 65535" % spec.ssh_port)
    if not os.path.isfile(spec.image):
        raise BoardError("image %s does not exist: build it with playbooks/image.yml" % spec.image)
    needed = [spec.edk2_code, spec.edk2_vars] if spec.firmware == "edk2" else [spec.uboot]
    missing = [path for path in needed if not os.path.isfile(path)]
    if shutil.which(QEMU) is None:
        missing.append(QEMU)
    if missing:
        raise BoardError("missing on the controller: %s (Debian packages qemu-system-arm, qemu-efi-aarch64, "
                         "u-boot-qemu: tools/apt/board.txt)" % ", ".join(missing))


def qemu_argv(spec: Spec) -> list[str]:
    """The QEMU command line: the machine, its firmware, disk, network, watchdog and console."""
    argv = [QEMU, "-name", spec.name, "-machine", "virt", "-cpu", "cortex-a76", "-accel", "tcg,thread=multi",
            "-smp", str(spec.cpus), "-m", str(spec.memory_mib),
            "-display", "none", "-monitor", "none",
            "-chardev", "file,id=console,path=%s" % spec.console_log, "-serial", "chardev:console",
            "-qmp", "unix:%s,server=on,wait=off" % spec.qmp_socket,
            "-pidfile", spec.pidfile, "-daemonize",
            "-drive", "if=none,id=disk,format=qcow2,discard=unmap,file=%s" % spec.overlay,
            "-device", "virtio-blk-pci,drive=disk,bootindex=0",
            # No option ROM: the firmware must not try network boot before the disk.
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22" % spec.ssh_port,
            "-device", "virtio-net-pci,netdev=net0,romfile=",
            # The board's watchdog stand-in: a PCI i6300esb; when not fed, QEMU resets the machine.
            "-device", "i6300esb", "-action", "watchdog=reset",
            "-device", "virtio-rng-pci"]
    if spec.firmware == "edk2":
        argv += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s" % spec.edk2_code,
                 "-drive", "if=pflash,format=raw,unit=1,file=%s" % spec.efi_vars]
    else:
        argv += ["-bios", spec.uboot]
    return argv + list(spec.extra_args)


def running_pid(spec: Spec) -> int | None:
    """The pid in the pidfile if that process is alive and is this board's QEMU."""
    try:
        with open(spec.pidfile, encoding="ascii") as stream:
            pid = int(stream.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as stream:
            cmdline = stream.read().split(b"\0")
    except (OSError, ValueError):
        return None
    if cmdline and os.path.basename(cmdline[0].decode()) == QEMU and spec.pidfile.encode() in cmdline:
        return pid
    return None


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as stream:
            return stream.read().split(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def console_tail(spec: Spec, lines: int = 25) -> str:
    try:
        with open(spec.console_log, "rb") as stream:
            stream.seek(max(0, os.path.getsize(spec.console_log) - 16384))
            text = stream.read().decode("utf-8", "replace").replace("\r", "")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:]) or "(console log empty)"


def overlay_backing(spec: Spec) -> str | None:
    result = subprocess.run(["qemu-img", "info", "--output=json", "-U", spec.overlay], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout).get("full-backing-filename")


def prepare_disk(spec: Spec, fresh: bool) -> str:
    """A qcow2 overlay on the image: kept across starts (like a board's disk), new when asked or when the
    image changed. Returns what was done."""
    os.makedirs(spec.run_dir, mode=0o755, exist_ok=True)
    image = os.path.abspath(spec.image)
    action = "kept"
    if fresh or not os.path.exists(spec.overlay) or overlay_backing(spec) != image:
        action = "created"
        partial = spec.overlay + ".partial"
        result = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image, partial],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BoardError("qemu-img create failed: %s" % result.stderr.strip())
        os.replace(partial, spec.overlay)
        if os.path.exists(spec.efi_vars):
            os.unlink(spec.efi_vars)
    if spec.firmware == "edk2" and not os.path.exists(spec.efi_vars):
        shutil.copyfile(spec.edk2_vars, spec.efi_vars + ".partial")
        os.replace(spec.efi_vars + ".partial", spec.efi_vars)
    return action


def ssh_banner(port: int, timeout: float = 5.0) -> str | None:
    """The SSH server's banner on the loopback port, or None. QEMU's user network accepts the TCP
    connection even when the guest is not listening, so only the banner tells that sshd is up."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            data = connection.recv(256)
    except OSError:
        return None
    text = data.decode("ascii", "replace").strip()
    return text if text.startswith("SSH-") else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As QEMU binds it: connections of the last boot in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(spec: Spec, boot_timeout: int, fresh: bool = False) -> dict[str, Any]:
    check_spec(spec)
    pid = running_pid(spec)
    if pid is not None and not fresh:
        banner = ssh_banner(spec.ssh_port)
        if banner:
            return {"changed": False, "action": "running", "pid": pid, "banner": banner, "boot_seconds": 0.0}
        return dict(wait_for_ssh(spec, pid, boot_timeout, time.monotonic()), changed=False, action="running")
    if pid is not None:
        stop(spec, stop_timeout=30)
    if not _port_free(spec.ssh_port):
        raise BoardError("127.0.0.1:%d is in use by another program: choose another board_port for %s"
                         % (spec.ssh_port, spec.name))
    disk = prepare_disk(spec, fresh)
    for stale in (spec.pidfile, spec.qmp_socket):
        if os.path.exists(stale):
            os.unlink(stale)
    with open(spec.console_log, "w", encoding="utf-8"):
        pass
    started = time.monotonic()
    try:
        result = subprocess.run(qemu_argv(spec), capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BoardError("QEMU did not start within 60 s") from exc
    if result.returncode != 0:
        raise BoardError("QEMU failed to start (exit %d): %s" % (result.returncode, result.stderr.strip()))
    pid = running_pid(spec)
    if pid is None:
        raise BoardError("QEMU exited right after starting; console:\n%s" % console_tail(spec))
    outcome = wait_for_ssh(spec, pid, boot_timeout, started)
    return dict(outcome, changed=True, action="started", disk=disk)


def wait_for_ssh(spec: Spec, pid: int, boot_timeout: int, started: float) -> dict[str, Any]:
    deadline = started + boot_timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise BoardError("%s: QEMU exited while booting; console:\n%s" % (spec.name, console_tail(spec)))
        banner = ssh_banner(spec.ssh_port)
        if banner:
            return {"pid": pid, "banner": banner, "boot_seconds": round(time.monotonic() - started, 1)}
        time.sleep(2)
    stop(spec, stop_timeout=5)
    raise BoardError("%s: no SSH server on 127.0.0.1:%d within %d s (board_boot_timeout); QEMU was stopped. "
                     "Last console lines (%s):\n%s" % (spec.name, spec.ssh_port, boot_timeout, spec.console_log,
                                                       console_tail(spec)))


def qmp(socket_path: str, command: str, arguments: dict[str, Any] | None = None,
        timeout: float = 5.0) -> dict[str, Any]:
    """Run one QMP command on a running QEMU; returns its reply (events before it are skipped)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(socket_path)
        reader = connection.makefile("rb")
        reader.readline()  # greeting
        reply: dict[str, Any] = {}
        for name, args in (("qmp_capabilities", None), (command, arguments)):
            request = {"execute": name, **({"arguments": args} if args else {})}
            connection.sendall(json.dumps(request).encode() + b"\n")
            while True:
                reply = json.loads(reader.readline() or b"{}")
                if "return" in reply or "error" in reply or not reply:
                    break
        return reply


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.5)
    return not _alive(pid)


def stop(spec: Spec, stop_timeout: int) -> dict[str, Any]:
    """Power down the guest (ACPI/GPIO power button through QMP), else terminate QEMU, else kill it."""
    pid = running_pid(spec)
    if pid is None:
        if os.path.exists(spec.pidfile):
            os.unlink(spec.pidfile)
        return {"changed": False, "action": "not-running"}
    started = time.monotonic()
    method = "powerdown"
    try:
        qmp(spec.qmp_socket, "system_powerdown")
    except (OSError, ValueError):
        method = "terminate"
    if method != "powerdown" or not _wait_exit(pid, stop_timeout):
        method = "terminate"
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, 10):
            method = "kill"
            os.kill(pid, signal.SIGKILL)
            if not _wait_exit(pid, 10):
                raise BoardError("%s: QEMU (pid %d) survived SIGKILL" % (spec.name, pid))
    for stale in (spec.pidfile, spec.qmp_socket):
        if os.path.exists(stale):
            os.unlink(stale)
    return {"changed": True, "action": "stopped", "method": method,
            "stop_seconds": round(time.monotonic() - started, 1)}
