"""The upstream sources the tests build, by the production pin that names each (README, "Pins").

Production builds from upstream git at the pins of group_vars/all; the tests cannot reach upstream
git, so they build the same source from a registry (tools/test_inputs.py). A pin that no entry here
names is a version no test has built: the inventory check refuses it. Moving a pin means moving the
test input with it and adding its entry here.
"""

from __future__ import annotations

from typing import NamedTuple

# llama.cpp as the tests get it: the llama-cpp-python sdist on PyPI, whose vendor/llama.cpp is
# ggml-org/llama.cpp at 0c1e57098 (its CHANGELOG, 0.3.36: "update llama.cpp to ggml-org/llama.cpp@0c1e57098"),
# llama.cpp's tag b11312.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"


class TestedSource(NamedTuple):
    pin: str        # the value of the production pin
    tested_as: str  # what the tests build for it


TESTED_SOURCES: dict[str, tuple[TestedSource, ...]] = {
    "rosenblatt_kernel_tag": (
        TestedSource("v7.2.13", "Linux 7.2.13 from Debian's linux-source-7.2 7.2.13-1 (sid), which the kernel "
                                "stage tests build"),
    ),
    "rosenblatt_llama_cpp_ref": (
        TestedSource(LLAMA_CPP_COMMIT, "llama.cpp b11312, the vendor/llama.cpp of the llama-cpp-python %s sdist, "
                                       "which the runtime tests build" % LLAMA_CPP_PYTHON_VERSION),
    ),
}


def untested_pin_problems(host: str, variables: dict) -> list[str]:
    """A problem for each pin that names a version no test builds."""
    problems = []
    for name, tested in TESTED_SOURCES.items():
        value = variables.get(name)
        if isinstance(value, str) and value not in {source.pin for source in tested}:
            problems.append("%s: %s is %r, which no test builds: the tests build %s; pin that, or move the test "
                            "input to the new version first (module_utils/tested_sources.py)"
                            % (host, name, value, "; ".join("%s (%s)" % source for source in tested)))
    return problems
