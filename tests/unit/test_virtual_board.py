"""The virtual board's QEMU command line and pidfile handling (the boot itself: tests/virtual/)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.virtual_board import (
    BoardError,
    Spec,
    check_spec,
    qemu_argv,
    running_pid,
    stop,
)


def _spec(tmp_path: Path, firmware: str = "edk2") -> Spec:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 512)
    return Spec(name="virtual-test", image=str(image), run_dir=str(tmp_path / "run"), firmware=firmware,
                ssh_port=2299)


def test_edk2_board_has_the_machine_watchdog_console_and_forwarded_ssh(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    argv = qemu_argv(spec)
    assert argv[0] == "qemu-system-aarch64"
    joined = " ".join(argv)
    assert "-machine virt -cpu cortex-a76 -accel tcg,thread=multi" in joined
    assert "-device i6300esb -action watchdog=reset" in joined
    assert f"-chardev file,id=console,path={spec.console_log} -serial chardev:console" in joined
    assert "hostfwd=tcp:127.0.0.1:2299-:22" in joined
    assert f"file={spec.overlay}" in joined and "format=qcow2" in joined
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={spec.edk2_code}" in joined
    assert f"if=pflash,format=raw,unit=1,file={spec.efi_vars}" in joined
    assert "-bios" not in argv


def test_uboot_board_boots_debians_qemu_arm64_uboot(tmp_path: Path) -> None:
    argv = qemu_argv(_spec(tmp_path, "u-boot"))
    assert ("-bios", "/usr/lib/u-boot/qemu_arm64/u-boot.bin") in list(itertools.pairwise(argv))
    assert not any("pflash" in arg for arg in argv)


def test_bad_firmware_and_port_are_named(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="firmware is 'grub': expected one of edk2, u-boot"):
        check_spec(_spec(tmp_path, "grub"))
    spec = _spec(tmp_path)
    with pytest.raises(BoardError, match="ssh_port is 22: expected an unprivileged TCP port"):
        check_spec(Spec(**{**spec.__dict__, "ssh_port": 22}))


def test_a_pidfile_of_another_program_is_not_this_board(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    Path(spec.run_dir).mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        Path(spec.pidfile).write_text(f"{sleeper.pid}\n")
        assert running_pid(spec) is None
        assert stop(spec, stop_timeout=1) == {"changed": False, "action": "not-running"}
        assert sleeper.poll() is None, "stop killed a process that was not this board's QEMU"
        assert not Path(spec.pidfile).exists()
    finally:
        sleeper.kill()
        sleeper.wait()
