"""Kernel-stage logic on small real inputs: Kconfig explanations, the DTB reader against dtc's output,
patch series and patch application (format-patch trailers, a cumulative patch, a hunk that fails)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import fdt, kconfig, kernel_source
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_build import (
    BuildError,
    apply_patches,
    read_series,
    write_symbols_fragment,
)
from tests.conftest import REPO

KCONFIG = """\
mainmenu "test"

config ARM64
\tdef_bool y

config DRM
\ttristate "DRM"

menu "Accelerators"
\tdepends on DRM

config DRM_ACCEL
\tbool "Compute acceleration"
\thelp
\t  A help text that says: depends on NOTHING and
\t  if you read it as Kconfig you get it wrong.

if DRM_ACCEL
source "drivers/Kconfig"
endif

endmenu
"""

DRIVERS_KCONFIG = """\
config IOMMU
\tbool "IOMMU"

config ROCKET
\ttristate "Rocket"
\tdepends on (ARM64 && IOMMU) || COMPILE_TEST
\tselect SCHED

config SCHED
\ttristate
"""


@pytest.fixture
def kernel_tree(tmp_path: Path) -> Path:
    (tmp_path / "drivers").mkdir()
    (tmp_path / "Kconfig").write_text(KCONFIG)
    (tmp_path / "drivers" / "Kconfig").write_text(DRIVERS_KCONFIG)
    return tmp_path


def test_kconfig_tree_records_dependencies_through_menus_ifs_and_sources(kernel_tree: Path) -> None:
    tree = kconfig.parse_tree(str(kernel_tree), "arm64")
    [rocket] = tree.definitions["ROCKET"]
    assert rocket.file == "drivers/Kconfig"
    assert rocket.enclosing == ["DRM", "DRM_ACCEL"]
    assert rocket.depends == ["(ARM64 && IOMMU) || COMPILE_TEST"]
    assert tree.definitions["DRM_ACCEL"][0].depends == []  # the help text was not read as Kconfig
    assert tree.selected_by["SCHED"][0][0] == "ROCKET"


def test_explain_names_each_unmet_condition_with_its_value(kernel_tree: Path) -> None:
    tree = kconfig.parse_tree(str(kernel_tree), "arm64")
    values = {"ARM64": "y", "DRM": "m", "DRM_ACCEL": "y", "IOMMU": "n"}
    assert kconfig.explain("ROCKET", "m", values, tree) == [
        "unmet: (ARM64 [=y] && IOMMU [=n]) || COMPILE_TEST [=n] (drivers/Kconfig)"]
    assert kconfig.explain("ROCKET", "y", dict(values, IOMMU="y"), tree) == [
        "limits it to m: DRM [=m] (drivers/Kconfig)"]
    assert kconfig.explain("DRM_ACCEL", "y", dict(values, DRM="m"), tree) == [
        "dependencies met; the value is overridden (choice, select or range)"]  # a bool is promoted to y
    assert kconfig.explain("NOPE", "y", values, tree) == [
        "not defined by any Kconfig of this kernel for this architecture"]
    assert kconfig.explain("SCHED", "n", dict(values, ROCKET="m", IOMMU="y"), tree) == ["selected by ROCKET [=m]"]


def test_verify_compares_fragments_with_the_final_config(kernel_tree: Path, tmp_path: Path) -> None:
    fragment = tmp_path / "want.config"
    fragment.write_text("CONFIG_ROCKET=m\n# CONFIG_IOMMU is not set\n")
    final = tmp_path / ".config"
    final.write_text("CONFIG_ARM64=y\nCONFIG_DRM=m\nCONFIG_DRM_ACCEL=y\n# CONFIG_IOMMU is not set\n")
    [miss] = kconfig.verify(str(final), [str(fragment)], str(kernel_tree), "arm64")
    assert miss.describe() == ("CONFIG_ROCKET (from want.config): asked m, got not set; "
                               "unmet: (ARM64 [=y] && IOMMU [=n]) || COMPILE_TEST [=n] (drivers/Kconfig)")
    fragment.write_text("this is not a config line\n")
    with pytest.raises(kconfig.KconfigError, match=r"want\.config line 1 is not a config line"):
        kconfig.verify(str(final), [str(fragment)], str(kernel_tree), "arm64")


NPU_DTS = """\
/dts-v1/;
/ {
\tmodel = "test board";
\t#address-cells = <1>;
\t#size-cells = <1>;
\tvdd_npu: regulator { regulator-name = "vdd_npu_s0"; };
\tmmu0: iommu@100 { reg = <0x100 0x10>; status = "okay"; };
\tmmu1: iommu@200 { reg = <0x200 0x10>; status = "disabled"; };
\tnpu@1000 { compatible = "rockchip,rk3588-rknn-core"; reg = <0x1000 0x10>; iommus = <&mmu0>;
\t\tnpu-supply = <&vdd_npu>; assigned-clock-rates = <200000000>; status = "okay"; };
\tnpu@2000 { compatible = "rockchip,rk3588-rknn-core"; reg = <0x2000 0x10>; iommus = <&mmu1>;
\t\tnpu-supply = <&vdd_npu>; };
\tnpu@3000 { compatible = "rockchip,rk3588-rknn-core"; reg = <0x3000 0x10>; iommus = <&mmu0>;
\t\tstatus = "disabled"; };
};
"""


def test_fdt_reader_reports_every_npu_problem_of_a_dtc_built_tree(tmp_path: Path) -> None:
    source, dtb = tmp_path / "npu.dts", tmp_path / "npu.dtb"
    source.write_text(NPU_DTS)
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(source)], check=True)
    report = fdt.npu_report(fdt.read(str(dtb)))
    assert report["model"] == "test board"
    assert [core["path"] for core in report["cores"]] == ["/npu@1000", "/npu@2000", "/npu@3000"]
    assert report["cores"][0]["npu_supply"] == "vdd_npu_s0"
    assert report["cores"][0]["assigned_clock_rates"] == [200000000]
    assert report["cores"][1]["enabled"]  # no status property means okay
    assert report["problems"] == [
        "/npu@2000: IOMMU /iommu@200 status is 'disabled', not \"okay\"",
        "/npu@3000: status is 'disabled', not \"okay\"",
        "/npu@3000: has no npu-supply",
    ]
    with pytest.raises(fdt.FdtError, match="does not enable the NPU"):
        fdt.verify_npu(str(dtb))
    with pytest.raises(fdt.FdtError, match="not a DTB"):
        fdt.verify_npu(str(source))


ORIGINAL = "line one\nline two\nline three\nline four\nline five\n"


def _format_patch(tree: Path, change: str, subject: str) -> str:
    """A real `git format-patch` mail (with its `-- ` signature) of one change to tree/file.txt."""
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tree / "file.txt").write_text(change)
    subprocess.run([*git, "commit", "-qam", subject], check=True)
    return subprocess.run([*git, "format-patch", "-1", "--stdout"], check=True, capture_output=True,
                          text=True).stdout


def test_format_patch_files_and_a_cumulative_patch_apply(tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.mkdir()
    (history / "file.txt").write_text(ORIGINAL)
    subprocess.run(["git", "init", "-q", str(history)], check=True)
    subprocess.run(["git", "-C", str(history), "add", "file.txt"], check=True)
    subprocess.run(["git", "-C", str(history), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
                   check=True)
    first = _format_patch(history, ORIGINAL.replace("line two", "line 2"), "two")
    second = _format_patch(history, ORIGINAL.replace("line two", "line 2").replace("line five", "line 5"), "five")
    assert "\n-- \n" in first  # the signature trailer is there
    for name, patches in (("separate", [first, second]), ("cumulative", [first + second])):
        tree = tmp_path / name
        tree.mkdir()
        (tree / "file.txt").write_text(ORIGINAL)
        files = []
        for index, text in enumerate(patches):
            files.append(tmp_path / ("%s-%d.patch" % (name, index)))
            files[-1].write_text(text)
        apply_patches(str(tree), [str(path) for path in files])
        assert (tree / "file.txt").read_text() == ORIGINAL.replace("line two", "line 2").replace("line five", "line 5")


def test_a_failing_hunk_is_named_with_its_header(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text(ORIGINAL.replace("line four", "line FOUR"))
    patch = tmp_path / "0001-five.patch"
    patch.write_text("--- a/file.txt\n+++ b/file.txt\n@@ -3,3 +3,3 @@ context\n line three\n line four\n-line five\n"
                     "+line 5\n")
    with pytest.raises(BuildError, match=r"patch 0001-five.patch does not apply: file.txt: hunk #1 FAILED at line 3 "
                                         r"\(@@ -3,3 \+3,3 @@ context\)"):
        apply_patches(str(tmp_path), [str(patch)])


def test_series_applies_opt_in_patches_only_when_asked(tmp_path: Path) -> None:
    for name in ("0001-always.patch", "0002-clock.patch"):
        (tmp_path / name).write_text("")
    series = tmp_path / "series"
    series.write_text("# comment\n0001-always.patch\n\n0002-clock.patch opt-in  # off by default\n")
    assert [Path(p).name for p in read_series(str(series), [])] == ["0001-always.patch"]
    assert [Path(p).name for p in read_series(str(series), ["0002-clock.patch"])] == ["0001-always.patch",
                                                                                      "0002-clock.patch"]
    with pytest.raises(BuildError, match=r"0001-always\.patch are not opt-in lines"):
        read_series(str(series), ["0001-always.patch"])
    series.write_text("0003-missing.patch\n")
    with pytest.raises(BuildError, match=r"line 1: patch 0003-missing\.patch does not exist"):
        read_series(str(series), [])
    series.write_text("")
    assert read_series(str(series), []) == []  # an empty series is valid


def test_host_symbols_become_a_fragment_named_by_its_content(tmp_path: Path) -> None:
    path = write_symbols_fragment({"DRM_ACCEL_ROCKET_NPU_CLOCK_HZ": 600000000, "FOO": "n", "NAME": "x"},
                                  str(tmp_path))
    assert Path(path).read_text() == ('CONFIG_DRM_ACCEL_ROCKET_NPU_CLOCK_HZ=600000000\n# CONFIG_FOO is not set\n'
                                      'CONFIG_NAME="x"\n')
    assert write_symbols_fragment({"DRM_ACCEL_ROCKET_NPU_CLOCK_HZ": 600000000, "FOO": "n", "NAME": "x"},
                                  str(tmp_path)) == path
    with pytest.raises(BuildError, match="config symbol 'CONFIG_X'"):
        write_symbols_fragment({"CONFIG_X": "y"}, str(tmp_path))


@pytest.fixture
def tiny_kernel(tmp_path: Path) -> Path:
    """The two files that make a folder a kernel tree for kernel_source: a Makefile with the version, a Kconfig."""
    tree = tmp_path / "linux-7.2.13"
    tree.mkdir()
    (tree / "Makefile").write_text("# SPDX-License-Identifier: GPL-2.0\nVERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n"
                                   "EXTRAVERSION =\n")
    (tree / "Kconfig").write_text('mainmenu "Linux"\n')
    return tree


def test_git_source_clones_the_tag_once_and_names_its_commit(tiny_kernel: Path, tmp_path: Path) -> None:
    git = ["git", "-C", str(tiny_kernel), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tiny_kernel)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "v7.2.13"], check=True)
    subprocess.run([*git, "tag", "v7.2.13"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    url = "file://%s" % tiny_kernel
    cache = tmp_path / "cache"
    planned = kernel_source.prepare("git", str(cache), git_url=url, git_tag="v7.2.13", check_mode=True)
    assert (planned.changed, planned.action) == (True, "would-fetch")
    assert not cache.exists()
    cloned = kernel_source.prepare("git", str(cache), git_url=url, git_tag="v7.2.13")
    assert (cloned.action, cloned.version) == ("cloned", "7.2.13")
    assert cloned.source_id == "git:%s@v7.2.13=%s" % (url, commit)
    again = kernel_source.prepare("git", str(cache), git_url=url, git_tag="v7.2.13")
    assert (again.changed, again.path, again.source_id) == (False, cloned.path, cloned.source_id)
    assert [p.name for p in (cache / "sources").iterdir()] == [Path(cloned.path).name]  # no scratch left


def test_tarball_and_directory_sources(tiny_kernel: Path, tmp_path: Path) -> None:
    tarball = tmp_path / "linux-7.2.13.tar.xz"
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(tiny_kernel.parent), tiny_kernel.name], check=True)
    cache = tmp_path / "cache"
    extracted = kernel_source.prepare("tarball", str(cache), path=str(tarball))
    assert (extracted.action, extracted.version) == ("extracted", "7.2.13")
    assert extracted.source_id == "tarball:" + kernel_source.sha256_of(str(tarball))
    assert (Path(extracted.path) / "Kconfig").is_file()
    assert not kernel_source.prepare("tarball", str(cache), path=str(tarball)).changed
    in_place = kernel_source.prepare("dir", str(cache), path=str(tiny_kernel))
    assert (in_place.path, in_place.version) == (str(tiny_kernel), "7.2.13")
    (tiny_kernel / "Makefile").write_text((tiny_kernel / "Makefile").read_text() + "# changed\n")
    assert kernel_source.prepare("dir", str(cache), path=str(tiny_kernel)).source_id != in_place.source_id
    with pytest.raises(kernel_source.SourceError, match="is not a kernel source tree"):
        kernel_source.prepare("dir", str(cache), path=str(tmp_path / "cache"))
    with pytest.raises(kernel_source.SourceError, match="unknown kernel source type 'svn'"):
        kernel_source.prepare("svn", str(cache))


def test_the_role_refuses_the_npu_clock_rates_the_patch_refuses() -> None:
    """One limit in three places that cannot share a file: the patch's Kconfig range, its C define, the role."""
    patch = (REPO / "kernel/patches/0001-accel-rocket-Set-the-NPU-clock-rate-on-runtime-resum.patch").read_text()
    kconfig_range = re.search(r"^\+\trange 0 (\d+)$", patch, re.MULTILINE)
    define = re.search(r"^\+#define ROCKET_NPU_CLOCK_MAX_HZ (\d+)UL$", patch, re.MULTILINE)
    role = yaml.safe_load((REPO / "roles/kernel_build/vars/main.yml").read_text())["kernel_build_npu_clock_max_hz"]
    assert kconfig_range and define
    assert int(kconfig_range.group(1)) == int(define.group(1)) == role == 800_000_000
