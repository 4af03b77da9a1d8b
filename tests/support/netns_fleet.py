"""A fleet of SSH hosts on this machine, each in its own network namespace.

Every host is a namespace joined to the controller by a veth pair with loopback-range addresses
(127.201.<n>.1 on the controller side, 127.201.<n>.2 inside), and a real OpenSSH server listening on its
inside address. Linux routes 127/8 only across links with `route_localnet` set, which both ends get. The
hosts share this machine's file system, so each one's board state lives in its own folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

SSHD = "/usr/sbin/sshd"
# The real fleet's pins, so the fleet under test is checked against the same versions.
PINS = Path(__file__).resolve().parents[2] / "inventory" / "group_vars" / "all.yml"
SUBNET = "127.201"
# Debian's bash runs ~/.bashrc for a command sshd starts, unless SHLVL says it is not the first shell. The
# hosts log in as this machine's root, whose .bashrc may be anything (a developer machine's runs `pyenv init`:
# 0.09 s of CPU per command, more than the module runs' own work); a board's root has Debian's, which does
# nothing without a terminal. So the hosts' sessions skip it, as a board's in effect do.
NOT_FIRST_SHELL = "SHLVL=1"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class FleetHost:
    name: str
    namespace: str
    address: str
    root: Path  # this host's own folder: state, sshd config and log

    @property
    def state_dir(self) -> Path:
        return self.root / "state"


class NetnsFleet:
    """`count` SSH hosts named <prefix>01.. ; `inventory()` writes an Ansible inventory for them."""

    def __init__(self, workdir: Path, count: int, prefix: str = "board") -> None:
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} is missing: install openssh-server (tools/apt/base.txt)")
        self.workdir = workdir
        self.tag = f"rbt{os.getpid() % 10000}"  # interface names are at most 15 characters
        self.key = workdir / "id_ed25519"
        self.hosts = [FleetHost(f"{prefix}{n:02d}", f"{self.tag}-{n}", f"{SUBNET}.{n}.2", workdir / f"{prefix}{n:02d}")
                      for n in range(1, count + 1)]
        self._sshd: list[subprocess.Popen] = []

    def __enter__(self) -> NetnsFleet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        host_key = self.workdir / "ssh_host_ed25519_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        authorized = self.workdir / "authorized_keys"
        shutil.copy(f"{self.key}.pub", authorized)
        for number, host in enumerate(self.hosts, start=1):
            self._make_namespace(number, host)
            host.state_dir.mkdir(parents=True)
            config = host.root / "sshd_config"
            config.write_text(
                f"ListenAddress {host.address}\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
                f"PidFile {host.root / 'sshd.pid'}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nMaxStartups 64\n"
                f"Subsystem sftp internal-sftp\nSetEnv {NOT_FIRST_SHELL}\n")
            log = (host.root / "sshd.log").open("w")
            self._sshd.append(subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, SSHD, "-D", "-e", "-f", str(config)],
                stdout=log, stderr=subprocess.STDOUT))
        for host in self.hosts:
            self._wait_for_ssh(host)

    def _make_namespace(self, number: int, host: FleetHost) -> None:
        outside, inside = f"{self.tag}h{number}", f"{self.tag}b{number}"
        _run("ip", "netns", "add", host.namespace)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", host.namespace)
        _run("sysctl", "-qw", f"net.ipv4.conf.{outside}.route_localnet=1")
        _run("ip", "addr", "add", f"{SUBNET}.{number}.1/30", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        inside_setup = (f"sysctl -qw net.ipv4.conf.{inside}.route_localnet=1 && "
                        f"ip addr add {host.address}/30 dev {inside} && ip link set {inside} up && ip link set lo up")
        _run("ip", "netns", "exec", host.namespace, "sh", "-c", inside_setup)

    def _wait_for_ssh(self, host: FleetHost, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host.address, 22), timeout=1) as connection:
                    if connection.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        log = (host.root / "sshd.log").read_text()
        raise RuntimeError(f"{host.name}: sshd on {host.address}:22 did not answer in {timeout:.0f} s: {log}")

    def stop(self) -> None:
        for process in self._sshd:
            process.send_signal(signal.SIGTERM)
        for process in self._sshd:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._sshd.clear()
        for number, host in enumerate(self.hosts, start=1):
            # Sessions kept open by ssh's ControlPersist outlive the listener and keep the namespace alive.
            pids = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True,
                                  check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", f"{self.tag}h{number}"], capture_output=True, check=False)

    def inventory(self, path: Path, group: str = "rk3588", extra: dict | None = None) -> Path:
        """An inventory directory like inventory/: the real pins, hosts.yml with the fleet in `group`."""
        hosts = {}
        for host in self.hosts:
            hosts[host.name] = {
                "board_model": "generic-linux", "board_soc": "none", "board_ram_gib": 1, "board_boot_media": "none",
                "board_boot_chain": "none", "board_distribution": "debian", "board_address": host.address,
                "board_shared": False, "rosenblatt_state_dir": str(host.state_dir),
                "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                           "-o LogLevel=ERROR",
                **(extra or {}),
            }
        (path / "group_vars").mkdir(parents=True, exist_ok=True)
        shutil.copy(PINS, path / "group_vars" / "all.yml")
        (path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": hosts}}}}))
        return path
