# Copyright: rosenblatt developers
# MIT License
"""Build a kernel artifact from a pristine source tree: patches, config, compile, device tree, manifest.

Steps, each failing with a message that names the bad input:
  1. input hash over the source id, every patch, fragment and overlay (contents), the targets and the
     toolchain versions; an artifact whose name carries that hash and whose manifest verifies means
     there is nothing to do.
  2. patched tree `<work>/trees/<hash>`: a hard-link copy of the pristine tree (GNU patch replaces the
     files it changes, so the pristine tree is never written) with the patches applied in order.
  3. `.config`: the base defconfig, the fragments merged with the kernel's merge_config.sh, olddefconfig,
     then every fragment symbol checked against the result (kconfig.verify explains what got dropped).
  4. make of the targets in `<work>/build/<tree hash>-<arch>` (out of tree, O=), reused across runs so
     a changed fragment rebuilds only what it affects; ccache on the compiler.
  5. overlays compiled with dtc -@, applied to the base DTB with fdtoverlay, the result checked by
     fdt.verify_npu.
  6. the artifact, staged under a temporary name and renamed: Image, DTBs, modules, .config and
     manifest.json with the sha256 of every file.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.rosenblatt.pipeline.plugins.module_utils import fdt, kconfig
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import (
    MANIFEST,
    sha256_of,
    write_manifest,
)
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_artifact import ArtifactError, check_artifact

# Bump when the way an artifact is made changes, so old artifacts are not mistaken for new ones.
BUILDER_VERSION = "2"
ARCH_IMAGE = {"arm64": "arch/arm64/boot/Image"}


class BuildError(Exception):
    """An expected failure, with a message for a person (no traceback)."""


@dataclass
class Spec:
    source_dir: str
    source_id: str
    work_root: str
    artifact_root: str
    patches: list[str]
    fragments: list[str]
    overlays: list[str]
    # The boards' DTBs (paths below arch/<arch>/boot/dts, e.g. rockchip/rk3588-rock-5-itx.dtb): each gets the
    # overlays applied and its NPU nodes verified.
    base_dtbs: list[str]
    targets: list[str]  # make targets, e.g. Image modules dtbs, or modules_prepare
    single_modules: list[str] = field(default_factory=list)  # e.g. drivers/accel/rocket/rocket.ko
    extra_dtbs: list[str] = field(default_factory=list)  # shipped as built, not verified
    arch: str = "arm64"
    base_config: str = "defconfig"
    cross_compile: str = "aarch64-linux-gnu-"
    ccache: bool = True
    ccache_dir: str = ""
    jobs: int = 0  # 0: one per core
    verify_npu: bool = True
    tarball: bool = False  # also pack the artifact as <artifact>.tar (to fetch it from a build-host board)


@dataclass
class Result:
    changed: bool
    action: str  # present, built, would-build
    input_hash: str
    artifact: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    log: str = ""


def _tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else ""


def toolchain(spec: Spec) -> dict[str, str]:
    """Versions of the compiler and device-tree tools; BuildError naming what is missing."""
    compiler = spec.cross_compile + "gcc"
    versions = {"gcc": _tool_version([compiler, "--version"]), "dtc": _tool_version(["dtc", "--version"])}
    if not versions["gcc"]:
        package = " (Debian: gcc-%s, listed in tools/apt/kernel.txt)" % spec.cross_compile.rstrip("-") \
            if spec.cross_compile else ""
        raise BuildError("compiler %s not found on this build host%s" % (compiler, package))
    missing = [tool for tool in ("make", "dtc", "fdtoverlay", "patch", "bison", "flex", "bc")
               + (("ccache",) if spec.ccache else ()) if shutil.which(tool) is None]
    if missing:
        raise BuildError("build tools missing on this build host: %s (tools/apt/kernel.txt)" % ", ".join(missing))
    return versions


def _named_digests(paths: list[str], what: str) -> list[dict[str, str]]:
    entries = []
    for path in paths:
        if not os.path.isfile(path):
            raise BuildError("%s %s does not exist" % (what, path))
        entries.append({"name": os.path.basename(path), "sha256": sha256_of(path)})
    return entries


def input_hash(spec: Spec, tools: dict[str, str]) -> tuple[str, dict[str, Any]]:
    inputs = {
        "builder": BUILDER_VERSION, "source": spec.source_id, "arch": spec.arch, "base_config": spec.base_config,
        "patches": _named_digests(spec.patches, "patch"),
        "fragments": _named_digests(spec.fragments, "config fragment"),
        "overlays": _named_digests(spec.overlays, "overlay"), "base_dtbs": spec.base_dtbs,
        "extra_dtbs": spec.extra_dtbs, "targets": spec.targets, "single_modules": spec.single_modules,
        "toolchain": tools, "cross_compile": spec.cross_compile,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest(), inputs


def find_artifact(artifact_root: str, digest: str) -> str | None:
    matches = sorted(glob.glob(os.path.join(artifact_root, "*-%s" % digest[:16], MANIFEST)))
    return os.path.dirname(matches[-1]) if matches else None


# --- patches -----------------------------------------------------------------------------------------

def read_series(series: str, opt_in: list[str]) -> list[str]:
    """Patch paths from a series file: `<file>` always, `<file> opt-in` only when named in opt_in."""
    if not os.path.isfile(series):
        raise BuildError("patch series %s does not exist" % series)
    chosen, offered = [], []
    with open(series, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) > 2 or (len(words) == 2 and words[1] != "opt-in"):
                raise BuildError("%s line %d: expected `<patch>` or `<patch> opt-in`, got %r"
                                 % (series, number, line.strip()))
            path = os.path.join(os.path.dirname(series), words[0])
            if not os.path.isfile(path):
                raise BuildError("%s line %d: patch %s does not exist" % (series, number, words[0]))
            if len(words) == 2:
                offered.append(words[0])
                if words[0] not in opt_in:
                    continue
            chosen.append(path)
    unknown = [name for name in opt_in if name not in offered]
    if unknown:
        raise BuildError("opt-in patch(es) %s are not opt-in lines of %s (offered: %s)"
                         % (", ".join(unknown), series, ", ".join(offered) or "none"))
    return chosen


def write_symbols_fragment(symbols: dict[str, Any], directory: str) -> str:
    """A config fragment for per-host symbols (e.g. the NPU clock rate), named by its content."""
    lines = []
    for name, value in sorted(symbols.items()):
        if not re.fullmatch(r"[A-Z0-9_]+", name) or name.startswith("CONFIG_"):
            raise BuildError("config symbol %r: expected upper-case letters, digits and _ without CONFIG_" % name)
        if isinstance(value, bool) or value in ("y", "m", "n"):
            text = {"True": "y", "False": "n"}.get(str(value), str(value))
            lines.append("# CONFIG_%s is not set" % name if text == "n" else "CONFIG_%s=%s" % (name, text))
        elif isinstance(value, int):
            lines.append("CONFIG_%s=%d" % (name, value))
        else:
            lines.append('CONFIG_%s="%s"' % (name, str(value).replace('"', '\\"')))
    content = "".join(line + "\n" for line in lines)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "host-%s.config" % hashlib.sha256(content.encode()).hexdigest()[:12])
    if not os.path.isfile(path):
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(content)
        os.rename(path + ".tmp", path)
    return path


def _hunk_header(patch: str, filename: str, number: int) -> str:
    """The `@@ ... @@` line of hunk NUMBER (1-based) for FILENAME in PATCH, for the error message."""
    current, count = None, 0
    with open(patch, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("+++ "):
                target = line[4:].split("\t")[0].strip()
                current = target.split("/", 1)[1] if "/" in target else target
                count = 0
            elif line.startswith("@@") and current == filename:
                count += 1
                if count == number:
                    return line.strip()
    return ""


def apply_patches(tree: str, patches: list[str]) -> None:
    """Apply every patch with GNU patch -p1; BuildError naming the patch, the file and the failed hunk.

    No fuzz (as git am): a hunk whose context has changed fails instead of landing somewhere close.
    GNU patch reads mail headers and stops at a `-- ` signature, so format-patch files and several of
    them concatenated into one cumulative file apply as they are.
    """
    for patch in patches:
        done = subprocess.run(["patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "-r", "-",
                               "-d", tree, "-i", patch], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            continue
        output = done.stdout + done.stderr
        problems, filename = [], ""
        for line in output.splitlines():
            file_match = re.match(r"^(?:patching|checking) file (\S+)", line)
            hunk = re.match(r"^Hunk #(\d+) FAILED at (\d+)", line)
            if file_match:
                filename = file_match.group(1)
            elif hunk:
                header = _hunk_header(patch, filename, int(hunk.group(1)))
                problems.append("%s: hunk #%s FAILED at line %s (%s)"
                                % (filename, hunk.group(1), hunk.group(2), header))
            elif "can't find file to patch" in line or "No file to patch" in line:
                problems.append("a file it changes does not exist")
            elif "Reversed (or previously applied) patch detected" in line:
                problems.append("%s: already applied (or reversed)" % filename)
        detail = "; ".join(problems) or " | ".join(output.strip().splitlines()[-4:])
        raise BuildError("patch %s does not apply: %s" % (os.path.basename(patch), detail))


def patched_tree(spec: Spec, inputs: dict[str, Any]) -> str:
    key = hashlib.sha256(json.dumps([spec.source_id, inputs["patches"]]).encode()).hexdigest()[:16]
    tree = os.path.join(spec.work_root, "trees", key)
    if os.path.isdir(tree):
        return tree
    os.makedirs(os.path.dirname(tree), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(tree), prefix=".%s-" % key)
    try:
        os.rmdir(staging)
        copy = subprocess.run(["cp", "-al", spec.source_dir, staging], capture_output=True, text=True, check=False)
        if copy.returncode != 0:  # another file system: a real copy
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(spec.source_dir, staging, symlinks=True)
        apply_patches(staging, spec.patches)
        try:
            os.rename(staging, tree)
        except OSError:
            if not os.path.isdir(tree):  # else another run made the same tree meanwhile: use theirs
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tree


# --- make ----------------------------------------------------------------------------------------------

class Make:
    """make with the same ARCH, CROSS_COMPILE and CC on every call: Kconfig evaluates the compiler too."""

    def __init__(self, spec: Spec, tree: str, build: str, log: str) -> None:
        self.tree, self.build, self.log = tree, build, log
        jobs = spec.jobs or os.cpu_count() or 1
        compiler = spec.cross_compile + "gcc"
        self.arguments = ["make", "-C", tree, "O=" + build, "ARCH=" + spec.arch, "-j%d" % jobs]
        if spec.cross_compile:
            self.arguments.append("CROSS_COMPILE=" + spec.cross_compile)
        if spec.ccache:
            self.arguments.append("CC=ccache " + compiler)
        self.environment = dict(os.environ, KBUILD_BUILD_USER="rosenblatt", KBUILD_BUILD_HOST="rosenblatt")
        if spec.ccache and spec.ccache_dir:
            # Paths below the work folder are hashed relative to it: another work folder with the same
            # layout (a test run, CI) hits the same entries.
            self.environment.update(CCACHE_DIR=spec.ccache_dir, CCACHE_BASEDIR=os.path.dirname(os.path.dirname(tree)),
                                    CCACHE_NOHASHDIR="1")

    def __call__(self, *targets: str, what: str = "", quiet: bool = False) -> str:
        command = [*self.arguments, *(["-s"] if quiet else []), *targets]
        with open(self.log, "a", encoding="utf-8") as log:
            log.write("$ %s\n" % " ".join(command))
            log.flush()
            start = log.tell()
            # Straight into the log, so a long build can be followed with tail -f.
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  env=self.environment, check=False)
        with open(self.log, encoding="utf-8", errors="replace") as log:
            log.seek(start)
            output = log.read()
        if done.returncode != 0:
            tail = [line for line in output.splitlines() if line.strip()][-25:]
            raise BuildError("%s failed (make %s), see %s:\n%s" % (what or "make", " ".join(targets), self.log,
                                                                   "\n".join(tail)))
        return output


def configure(spec: Spec, make: Make, inputs: dict[str, Any]) -> None:
    """.config from the base config and the fragments, verified; skipped when the build folder already
    holds the verified .config of the same inputs (the stamp names them and the .config's sha256)."""
    config = os.path.join(make.build, ".config")
    stamp = os.path.join(make.build, ".rosenblatt-config")
    key = hashlib.sha256(json.dumps([spec.base_config, inputs["fragments"], inputs["toolchain"], make.arguments[1:]],
                                    sort_keys=True).encode()).hexdigest()
    if os.path.isfile(stamp) and os.path.isfile(config):
        with open(stamp, encoding="utf-8") as handle:
            if handle.read().split() == [key, sha256_of(config)]:
                return
    make(spec.base_config, what="base config %s" % spec.base_config, quiet=True)
    if spec.fragments:
        merge_config = os.path.join(make.tree, "scripts", "kconfig", "merge_config.sh")
        merge = subprocess.run([merge_config, "-m", "-O", make.build, config, *spec.fragments], cwd=make.tree,
                               capture_output=True, text=True, env=make.environment, check=False)
        with open(make.log, "a", encoding="utf-8") as log:
            log.write(merge.stdout + merge.stderr)
        if merge.returncode != 0:
            raise BuildError("merge_config.sh failed: %s" % (merge.stderr or merge.stdout).strip()[-800:])
    make("olddefconfig", what="olddefconfig", quiet=True)
    try:
        misses = kconfig.verify(config, spec.fragments, make.tree, spec.arch)
    except kconfig.KconfigError as exc:
        raise BuildError(str(exc)) from None
    if misses:
        raise BuildError("%d config symbol(s) from the fragments did not survive olddefconfig:\n%s"
                         % (len(misses), "\n".join("  " + miss.describe() for miss in misses)))
    with open(stamp + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("%s %s\n" % (key, sha256_of(config)))
    os.rename(stamp + ".tmp", stamp)


# --- device tree -----------------------------------------------------------------------------------------

def compile_overlay(overlay: str, tree: str, output: str) -> None:
    """cpp (so overlays may #include dt-bindings headers, like the kernel's own DTS) then dtc -@."""
    preprocessed = output + ".dts.tmp"
    includes = ["-I", os.path.join(tree, "scripts", "dtc", "include-prefixes"), "-I", os.path.join(tree, "include")]
    steps = [["cpp", "-nostdinc", *includes, "-undef", "-D__DTS__", "-x", "assembler-with-cpp", "-P", "-o",
              preprocessed, overlay],
             ["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", output, preprocessed]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError("overlay %s does not compile (%s): %s"
                             % (os.path.basename(overlay), step[0], done.stderr.strip().replace(preprocessed,
                                                                                                overlay)[-600:]))
    os.unlink(preprocessed)


def apply_overlays(base: str, overlays: list[str], output: str) -> None:
    """fdtoverlay one overlay at a time, so a failure names the overlay that does not apply."""
    current = base
    for index, overlay in enumerate(overlays):
        step = "%s.%d" % (output, index)
        done = subprocess.run(["fdtoverlay", "-i", current, "-o", step, overlay], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise BuildError("overlay %s does not apply to %s: %s"
                             % (os.path.basename(overlay).replace(".dtbo", ".dtso"), os.path.basename(base),
                                (done.stderr or done.stdout).strip().replace("\n", " ")))
        current = step
    shutil.copyfile(current, output)
    for index in range(len(overlays)):
        os.unlink("%s.%d" % (output, index))


# --- artifact -----------------------------------------------------------------------------------------

def _stage_modules(spec: Spec, make: Make, release: str, staging: str) -> None:
    if "modules" in spec.targets:
        make("modules_install", "INSTALL_MOD_PATH=" + os.path.join(staging, "modules"), "INSTALL_MOD_STRIP=1",
             what="modules_install", quiet=True)
    for module in spec.single_modules:
        destination = os.path.join(staging, "modules", "lib", "modules", release, "kernel", module)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(os.path.join(make.build, module), destination)
    # Links back into the build dir would make the artifact depend on this host.
    for link in glob.glob(os.path.join(staging, "modules", "lib", "modules", "*", "build")):
        os.unlink(link)


def build(spec: Spec, check_mode: bool = False) -> Result:
    tools = toolchain(spec)
    digest, inputs = input_hash(spec, tools)
    existing = find_artifact(spec.artifact_root, digest)
    if existing:
        try:
            installable = "Image" in spec.targets and "modules" in spec.targets
            manifest = check_artifact(existing, spec.arch, installable=installable)["manifest"]
            packed = spec.tarball and not check_mode and pack(existing)
            return Result(packed, "present", digest, existing, manifest)
        except ArtifactError:
            if not check_mode:
                shutil.rmtree(existing)  # a damaged artifact is rebuilt, never used
    if check_mode:
        return Result(True, "would-build", digest)
    started = time.monotonic()
    tree = patched_tree(spec, inputs)
    build_dir = os.path.join(spec.work_root, "build", "%s-%s" % (os.path.basename(tree), spec.arch))
    os.makedirs(build_dir, exist_ok=True)
    log = os.path.join(build_dir, "rosenblatt-build.log")
    with open(log, "w", encoding="utf-8") as handle:
        handle.write("input hash %s\n" % digest)
    make = Make(spec, tree, build_dir, log)
    configure(spec, make, inputs)
    dtbs = [*spec.base_dtbs, *spec.extra_dtbs]
    # -@ on the base DTBs only: it keeps the labels (__symbols__) the overlays refer to.
    make(*spec.targets, *dtbs, *("DTC_FLAGS_%s=-@" % os.path.splitext(os.path.basename(dtb))[0]
                                 for dtb in spec.base_dtbs), what="build")
    if spec.single_modules:
        # modpost cannot resolve symbols without vmlinux's Module.symvers: warn instead of failing.
        make(*spec.single_modules, "KBUILD_MODPOST_WARN=1", what="module build")
    release = make("kernelrelease", what="kernelrelease", quiet=True).strip().splitlines()[-1]
    os.makedirs(spec.artifact_root, exist_ok=True)
    staging = tempfile.mkdtemp(dir=spec.artifact_root, prefix=".staging-")
    try:
        npu = _stage_device_tree(spec, make, staging, dtbs)
        image = ARCH_IMAGE.get(spec.arch)
        if image and os.path.isfile(os.path.join(build_dir, image)) and "Image" in spec.targets:
            shutil.copyfile(os.path.join(build_dir, image), os.path.join(staging, "Image"))
        _stage_modules(spec, make, release, staging)
        shutil.copyfile(os.path.join(build_dir, ".config"), os.path.join(staging, "config"))
        manifest = write_manifest(staging, {
            "release": release, "source": spec.source_id, "input_hash": digest, "arch": spec.arch,
            "targets": spec.targets, "single_modules": spec.single_modules,
            "patches": inputs["patches"], "fragments": inputs["fragments"], "overlays": inputs["overlays"],
            "base_dtbs": spec.base_dtbs, "config_sha256": sha256_of(os.path.join(staging, "config")),
            "toolchain": tools,
            "build_time": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
            "build_seconds": round(time.monotonic() - started, 1), "npu": npu,
        })
        destination = os.path.join(spec.artifact_root, "%s-%s" % (release, digest[:16]))
        shutil.rmtree(destination, ignore_errors=True)
        os.chmod(staging, 0o755)
        os.rename(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if spec.tarball:
        pack(destination)
    return Result(True, "built", digest, destination, manifest, log)


def pack(artifact: str) -> bool:
    """<artifact>.tar next to the artifact directory (temporary name, then renamed); False if it exists."""
    target = artifact + ".tar"
    if os.path.isfile(target):
        return False
    with tarfile.open(target + ".tmp", "w") as archive:
        archive.add(artifact, arcname=os.path.basename(artifact))
    os.rename(target + ".tmp", target)
    return True


def _stage_device_tree(spec: Spec, make: Make, staging: str, dtbs: list[str]) -> dict[str, Any]:
    dts_dir = os.path.join(make.build, "arch", spec.arch, "boot", "dts")
    if "dtbs" in spec.targets:
        # Every DTB the dtbs target built (with rockchip-only.config: the Rockchip boards), as built.
        dtbs = sorted({*dtbs, *(os.path.relpath(path, dts_dir)
                                for path in glob.glob(os.path.join(dts_dir, "*", "*.dtb")))})
    for dtb in dtbs:
        os.makedirs(os.path.dirname(os.path.join(staging, "dtbs", dtb)), exist_ok=True)
        shutil.copyfile(os.path.join(dts_dir, dtb), os.path.join(staging, "dtbs", dtb))
    compiled = []
    if spec.overlays and spec.base_dtbs:
        overlay_dir = os.path.join(staging, "dtbs", "overlays")
        os.makedirs(overlay_dir, exist_ok=True)
        for overlay in spec.overlays:
            output = os.path.join(overlay_dir, os.path.splitext(os.path.basename(overlay))[0] + ".dtbo")
            compile_overlay(overlay, make.tree, output)
            compiled.append(output)
    npu = {}
    for dtb in spec.base_dtbs:
        shipped = os.path.join(staging, "dtbs", dtb)
        if compiled:
            apply_overlays(os.path.join(dts_dir, dtb), compiled, shipped)
        if not spec.verify_npu:
            continue
        try:
            report = fdt.verify_npu(shipped)
        except fdt.FdtError as exc:
            raise BuildError(str(exc).replace(staging + "/", "")) from None
        npu[dtb] = {"model": report["model"], "cores": [
            {key: core[key] for key in ("path", "status", "npu_supply", "iommu", "assigned_clock_rates")}
            for core in report["cores"]]}
    return npu
