"""The kernel rollout's decisions: kernel image architecture, adopting a board's boot state from the loader
configs our image rendered, free space per file system, and the plan (what is installed, kept, removed)."""

from __future__ import annotations

import gzip
import json
import re
import struct
from pathlib import Path

import jinja2
import pytest

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import write_manifest
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.boot_chains import descriptor
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_artifact import (
    ArtifactError,
    check_artifact,
    image_architecture,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_rollout import (
    INSTALLED_MARKER,
    RolloutError,
    adopt,
    board_cmdline,
    installed_releases,
    plan,
    read_state,
    space_shortfalls,
)
from tests.conftest import REPO

OLD, NEW = "6.1.0-50-arm64", "7.2.13+deb14-arm64"
CMDLINE = "root=PARTUUID=0d1e-03 rw console=ttyAMA0,115200 panic=10"


def _arm64_image() -> bytes:
    header = bytearray(64)
    header[56:60] = b"ARM\x64"
    return bytes(header) + b"\0" * 1024


def _x86_bzimage() -> bytes:
    data = bytearray(0x400)
    data[0x202:0x206] = b"HdrS"
    return bytes(data)


def _zboot(machine: int) -> bytes:
    data = bytearray(0x400)
    data[:2], data[4:8] = b"MZ", b"zimg"
    struct.pack_into("<I", data, 0x3C, 0x80)
    data[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", data, 0x84, machine)
    return bytes(data)


@pytest.mark.parametrize(("data", "expected"), [
    (_arm64_image(), "arm64"),
    (gzip.compress(_arm64_image()), "arm64"),
    (_x86_bzimage(), "x86"),
    (_zboot(0xAA64), "arm64"),
    (_zboot(0x8664), "x86"),
    (b"\0" * 4096, "unknown"),
])
def test_image_architecture_from_the_header(tmp_path: Path, data: bytes, expected: str) -> None:
    (tmp_path / "Image").write_bytes(data)
    assert image_architecture(str(tmp_path / "Image")) == expected


def test_an_artifact_with_an_x86_kernel_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"modules/lib/modules/{NEW}").mkdir(parents=True)
    (tmp_path / "Image").write_bytes(_x86_bzimage())
    (tmp_path / "config").write_text("CONFIG_X86=y\n")
    write_manifest(str(tmp_path), {"release": NEW})
    with pytest.raises(ArtifactError, match="Image is a x86 kernel, not arm64"):
        check_artifact(str(tmp_path), "arm64")
    assert check_artifact(str(tmp_path))["architecture"] == "x86"


def _render_boot(boot: Path, releases: list[str], default: str) -> None:
    """The loader configs as the boot_config role renders them (its own templates)."""
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO / "roles/boot_config/templates"),
                                   trim_blocks=True, undefined=jinja2.StrictUndefined)
    values = {"ansible_managed": "Ansible managed", "boot_config_default": default, "boot_config_timeout": 2,
              "boot_config_entries": [{"release": release} for release in releases], "boot_config_cmdline": CMDLINE,
              "boot_config_devicetree": "rockchip/rk3588-rock-5-itx.dtb", "boot_config_boot_fs_uuid": "b0075e1f",
              "boot_config_trial": {}, "boot_config_initrd": True}
    for name in ("uefi-grub", "uboot-extlinux"):
        chain = descriptor(name)
        (boot / chain["config"]).parent.mkdir(parents=True, exist_ok=True)
        (boot / chain["config"]).write_text(templates.get_template(chain["template"]).render(values))
    for release in releases:
        (boot / release).mkdir(parents=True, exist_ok=True)
        (boot / release / "Image").write_bytes(_arm64_image())
        (boot / release / "initrd.img").write_bytes(b"initrd")


def test_adopting_the_boot_state_our_image_rendered(tmp_path: Path) -> None:
    _render_boot(tmp_path, [OLD], OLD)
    (tmp_path / f"{NEW}.partial").mkdir()  # an interrupted install is not a kernel
    state = adopt(str(tmp_path), OLD, f"BOOT_IMAGE=/{OLD}/Image {CMDLINE} rosenblatt.trial_deadline=600\n")
    assert state == {"format": 2, "chains": ["uefi-grub", "uboot-extlinux"], "cmdline": CMDLINE,
                     "devicetree": "rockchip/rk3588-rock-5-itx.dtb", "boot_fs_uuid": "b0075e1f",
                     "entries": [{"release": OLD, "cmdline_extra": ""}], "default": OLD, "bad": {}}


def test_grub_default_names_an_entry_id_that_does_not_start_with_a_digit(tmp_path: Path) -> None:
    """GRUB reads a default starting with a digit ("6.1.0-...") as an entry number: with no such entry it boots
    the first one, and a committed kernel is lost at the next power-on (seen on the virtual board)."""
    _render_boot(tmp_path, [OLD, NEW], NEW)
    text = (tmp_path / "grub/grub.cfg").read_text()
    ids = re.findall(r'^menuentry "[^"]*" --id "([^"]+)"', text, re.MULTILINE)
    [default] = re.findall(r'^set default="([^"]+)"', text, re.MULTILINE)
    assert default == ids[1] and not any(entry[0].isdigit() for entry in ids)


def test_an_image_rendered_with_bare_release_ids_is_adopted(tmp_path: Path) -> None:
    _render_boot(tmp_path, [OLD], OLD)
    grub = tmp_path / "grub/grub.cfg"
    grub.write_text(grub.read_text().replace(f'"linux-{OLD}"', f'"{OLD}"'))
    (tmp_path / "extlinux/extlinux.conf").unlink()
    assert adopt(str(tmp_path), OLD, CMDLINE)["default"] == OLD


def test_a_loader_config_nobody_generates_is_not_adopted(tmp_path: Path) -> None:
    (tmp_path / "grub").mkdir()
    (tmp_path / "grub/grub.cfg").write_text("menuentry 'by hand' {\n}\n")
    with pytest.raises(RolloutError, match=r"grub\.cfg was written by neither rosenblatt nor grub-mkconfig"):
        adopt(str(tmp_path), OLD, CMDLINE)


def test_a_distribution_generated_grub_cfg_is_adopted_only_on_its_chain(tmp_path: Path) -> None:
    (tmp_path / "grub").mkdir()
    (tmp_path / "grub/grub.cfg").write_text("#\n# DO NOT EDIT THIS FILE\n#\n# It is automatically generated by "
                                            "grub-mkconfig using templates\n")
    with pytest.raises(RolloutError, match=r"did not detect uefi-grub-distribution"):
        adopt(str(tmp_path), OLD, CMDLINE)
    state = adopt(str(tmp_path), OLD, f"BOOT_IMAGE=/vmlinuz-{OLD} {CMDLINE}", "uefi-grub-distribution")
    assert state == {"format": 2, "chains": ["uefi-grub-distribution"], "cmdline": CMDLINE, "devicetree": "",
                     "boot_fs_uuid": "", "entries": [], "default": OLD, "distribution": {"release": OLD}, "bad": {}}
    # The first rollout's plan: the distribution's kernel is the known-good one and is never removed.
    assert plan(state, NEW, "a" * 64, running=OLD, installed_sha256=None, keep=1) == {
        "action": "rollout", "known_good": OLD, "remove": []}


def test_a_format_1_boot_state_names_its_chains(tmp_path: Path) -> None:
    state_file = tmp_path / "boot.json"
    state_file.write_text(json.dumps({"format": 1, "loaders": ["extlinux", "grub"], "default": OLD, "entries": []}))
    state, adopted = read_state(str(state_file), str(tmp_path), OLD, CMDLINE)
    assert not adopted and state["format"] == 2 and state["chains"] == ["uboot-extlinux", "uefi-grub"]


def test_a_default_that_is_not_installed_is_not_adopted(tmp_path: Path) -> None:
    _render_boot(tmp_path, [OLD], OLD)
    (tmp_path / OLD / "initrd.img").unlink()
    with pytest.raises(RolloutError, match=r"default entry 6\.1\.0-50-arm64 .* is not an installed kernel"):
        adopt(str(tmp_path), OLD, CMDLINE)


def test_board_cmdline_drops_what_loader_and_trial_add() -> None:
    assert board_cmdline("BOOT_IMAGE=/x/Image initrd=/x/initrd.img root=/dev/vda3 rosenblatt.trial_deadline=5 ro\n") \
        == "root=/dev/vda3 ro"


def _state(*releases: str, default: str, bad: dict | None = None) -> dict:
    return {"entries": [{"release": release, "cmdline_extra": ""} for release in releases], "default": default,
            "bad": bad or {}}


def test_plan_a_new_kernel() -> None:
    decided = plan(_state(OLD, default=OLD), NEW, "a" * 64, running=OLD, installed_sha256=None, keep=3)
    assert decided == {"action": "rollout", "known_good": OLD, "remove": []}


def test_plan_is_nothing_when_the_artifact_runs_and_is_the_default() -> None:
    decided = plan(_state(OLD, NEW, default=NEW), NEW, "a" * 64, running=NEW, installed_sha256="a" * 64, keep=3)
    assert decided["action"] == "none"


def test_plan_commits_a_trial_kernel_that_already_runs() -> None:
    decided = plan(_state(OLD, NEW, default=OLD), NEW, "a" * 64, running=NEW, installed_sha256="a" * 64, keep=3)
    assert decided["action"] == "commit-only" and decided["known_good"] == OLD


def test_plan_keeps_n_kernels_but_never_the_running_or_known_good_one() -> None:
    state = _state("k1", "k2", "k3", default="k1")
    decided = plan(state, NEW, "a" * 64, running="k2", installed_sha256=None, keep=2)
    assert decided["remove"] == ["k3"]  # four after the install: k1 known-good, k2 running, the new one stay
    decided = plan(state, NEW, "a" * 64, running="k1", installed_sha256=None, keep=1)
    assert decided["remove"] == ["k2", "k3"]


@pytest.mark.parametrize("keep", [0, -3, True])
def test_plan_refuses_a_keep_that_would_remove_every_kernel(keep: int) -> None:
    with pytest.raises(RolloutError, match="keep is"):
        plan(_state("k1", "k2", "k3", default="k1"), NEW, "a" * 64, running="k2", installed_sha256=None, keep=keep)


def test_plan_removes_the_files_of_bad_releases_on_commit() -> None:
    state = _state("k1", default="k1", bad={"k2": {"reason": "panic"}, NEW: {"reason": "panic"}})
    decided = plan(state, "k3", "a" * 64, running="k1", installed_sha256=None, keep=3, installed=["k1", "k2"])
    assert decided["remove"] == ["k2"]  # NEW is marked bad but its files are gone already


def test_plan_refuses_a_release_marked_bad() -> None:
    state = _state(OLD, default=OLD, bad={NEW: {"reason": "verify: rocket did not load", "when": "2026-11-24"}})
    with pytest.raises(RolloutError, match=r"release 7\.2\.13\+deb14-arm64 is marked bad .*rocket did not load"):
        plan(state, NEW, "a" * 64, running=OLD, installed_sha256=None, keep=3)


def test_plan_refuses_a_release_string_reused_for_other_contents() -> None:
    with pytest.raises(RolloutError, match="other contents than this artifact"):
        plan(_state(OLD, NEW, default=NEW), NEW, "b" * 64, running=NEW, installed_sha256="a" * 64, keep=3)


def test_space_is_added_up_per_file_system() -> None:
    free = {"boot": {"path": "/boot", "device": 1, "free": 300 << 20},
            "modules": {"path": "/lib/modules", "device": 2, "free": 500 << 20},
            "staging": {"path": "/var/lib/rosenblatt/staging", "device": 2, "free": 500 << 20}}
    assert space_shortfalls(free, {"boot": 200 << 20, "modules": 200 << 20, "staging": 200 << 20}) == []
    problems = space_shortfalls(free, {"boot": 400 << 20, "modules": 300 << 20, "staging": 300 << 20})
    assert problems == ["/boot: 400 MiB needed (boot 400 MiB), 300 MiB free",
                        "/lib/modules and /var/lib/rosenblatt/staging: 600 MiB needed (modules 300 MiB, "
                        "staging 300 MiB), 500 MiB free"]


def test_a_kernel_installed_without_an_initramfs_is_installed(tmp_path: Path) -> None:
    """A board without an initramfs tool: the install's marker completes the folder, not initrd.img."""
    for release, files in (("with-initrd", ("Image", "initrd.img")), ("no-tool", ("Image", INSTALLED_MARKER)),
                           ("partial", ("Image",)), ("no-image", ("initrd.img", INSTALLED_MARKER))):
        (tmp_path / release).mkdir()
        for name in files:
            (tmp_path / release / name).write_bytes(b"x")
    assert installed_releases(str(tmp_path)) == ["no-tool", "with-initrd"]
