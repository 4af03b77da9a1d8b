"""The initramfs commands kernel_install runs, parsed the way each tool parses its command line, from the
tools' documented interfaces. mkinitcpio (boltzmann's tool) cannot run here; dracut and initramfs-tools run on
the virtual board (tests/virtual). Interfaces:
- mkinitcpio v41 (archlinux/mkinitcpio, `mkinitcpio` lines 852-858 and man/mkinitcpio.8.adoc): `-k/--kernel
  <kernelversion>`, `-g/--generate <filename>`; parsed by its `parseopts` (getopt-style, long options).
- dracut(8): `dracut [OPTION...] [<image> [<kernel version>]]`, `--kver <kernel version>`, `-f/--force`.
- mkinitramfs(8) (initramfs-tools): `mkinitramfs [option]... -o outfile [version]`.
"""

from __future__ import annotations

import getopt

import pytest

from ansible_collections.rosenblatt.pipeline.plugins.modules.kernel_install import initramfs_command

# mkinitcpio v41's option table (its own parseopts input), as published.
MKINITCPIO_SHORT = "A:c:D:I:g:H:hk:nLMPp:Rr:S:sd:t:U:Vvz:"
MKINITCPIO_LONG = ["add:", "addhooks:", "include:", "config:", "generate:", "hookdir:", "hookhelp:", "help",
                   "kernel:", "listhooks", "automods", "moduleroot:", "nocolor", "nopost", "allpresets", "preset:",
                   "remove", "skiphooks:", "save", "generatedir:", "builddir:", "version", "verbose", "compress:",
                   "uki:", "uefi:", "microcode:", "splash:", "kernelimage:", "uefistub:", "cmdline:", "osrelease:",
                   "no-cmdline", "ukiconfig:", "no-ukify"]
DRACUT_LONG = ["kver=", "force"]  # the two options we use, of dracut(8)'s many
RELEASE, OUTPUT = "7.2.13-rosenblatt-f7e292333492eafa", "/boot/7.2.13-rosenblatt-f7e292333492eafa.partial/initrd.img"


def _long(options: list[str]) -> list[str]:
    return [name[:-1] + "=" if name.endswith(":") else name for name in options]


def test_mkinitcpio_gets_the_release_and_the_output_file() -> None:
    argv = initramfs_command("mkinitcpio", RELEASE, OUTPUT)
    assert argv[0] == "mkinitcpio"
    # mkinitcpio's parseopts accepts no positional argument: anything left over is an error there.
    options, positional = getopt.gnu_getopt(argv[1:], MKINITCPIO_SHORT, _long(MKINITCPIO_LONG))
    assert positional == []
    assert dict(options) == {"--kernel": RELEASE, "--generate": OUTPUT}
    # Not a preset run (-p / -P): those write the distribution's own /boot images, which we never touch.
    assert not {"-p", "-P", "--preset", "--allpresets"} & set(dict(options))


def test_dracut_gets_the_release_and_the_output_file() -> None:
    argv = initramfs_command("dracut", RELEASE, OUTPUT)
    options, positional = getopt.gnu_getopt(argv[1:], "f", _long(DRACUT_LONG))
    assert argv[0] == "dracut" and positional == [OUTPUT]
    assert dict(options) == {"--force": "", "--kver": RELEASE}


def test_mkinitramfs_gets_the_output_file_and_the_release() -> None:
    argv = initramfs_command("initramfs-tools", RELEASE, OUTPUT)
    options, positional = getopt.gnu_getopt(argv[1:], "c:d:ko:rv", [])
    assert argv[0] == "mkinitramfs" and dict(options) == {"-o": OUTPUT} and positional == [RELEASE]


def test_an_unknown_tool_is_not_guessed() -> None:
    with pytest.raises(KeyError):
        initramfs_command("booster", RELEASE, OUTPUT)
