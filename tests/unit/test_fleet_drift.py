"""The drift report's logic: each difference from the pins named, unreachable boards kept apart."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.board_state import read_state
from ansible_collections.rosenblatt.pipeline.plugins.module_utils.fleet_drift import fleet_drift

PINS = {"rosenblatt_kernel_tag": "v7.2.13", "rosenblatt_llama_cpp_ref": "b6000", "rosenblatt_model_sha256": "ab" * 32}
KERNEL = {"component": "kernel", "release": "7.2.13-rosenblatt", "source_ref": "v7.2.13", "artifact_sha256": "c" * 64}
RUNTIME = {"component": "runtime", "llama_cpp_ref": "b6000", "backend_version": "0.1.0"}
MODEL = {"component": "model", "sha256": "ab" * 32}


def host(name: str, components: dict, running: str = "7.2.13-rosenblatt", reached: bool = True) -> dict:
    facts = {"rknpu": {"kernel_release": running, "verdict": "ready", "message": "ok"},
             "board": {"boot_chain": "uefi-grub"},
             "rosenblatt_state": {"components": components, "problems": []}} if reached else {}
    return {"host": name, "model": "radxa-rock-5-itx-plus", "facts": facts, "pins": PINS}


def test_board_with_every_pinned_component_is_in_sync() -> None:
    report = fleet_drift([host("a", {"kernel": KERNEL, "runtime": RUNTIME, "model": MODEL,
                                     "verify": {"result": "passed", "generated": "20261124T080000Z"}})])
    [row] = report["hosts"]
    assert row["status"] == "in-sync" and row["drift"] == []
    assert row["kernel_artifact"] == "c" * 64 and row["verification"] == "passed"
    assert report["counts"] == {"in-sync": 1, "drift": 0, "unreachable": 0}


def test_each_difference_is_named() -> None:
    components = {"kernel": dict(KERNEL, source_ref="v7.2.12"), "runtime": dict(RUNTIME, llama_cpp_ref="b5000"),
                  "model": dict(MODEL, sha256="ef" * 32)}
    [row] = fleet_drift([host("a", components)])["hosts"]
    assert row["status"] == "drift"
    assert row["drift"] == ["kernel: built from v7.2.12 (pinned v7.2.13)", "runtime: llama.cpp b5000 (pinned b6000)",
                            "model: sha256 efefefefefef (pinned abababababab)"]


def test_board_that_runs_another_kernel_than_installed_drifts() -> None:
    [row] = fleet_drift([host("a", {"kernel": KERNEL, "runtime": RUNTIME, "model": MODEL},
                              running="7.0.0-rc3")])["hosts"]
    assert row["drift"] == ["kernel: running 7.0.0-rc3, installed 7.2.13-rosenblatt"]


def test_missing_components_are_drift_not_errors() -> None:
    [row] = fleet_drift([host("a", {})])["hosts"]
    assert [item.split(":")[0] for item in row["drift"]] == ["kernel", "runtime", "model"]
    assert "not installed" in row["drift"][0]


def test_unreachable_board_is_counted_apart() -> None:
    report = fleet_drift([host("a", {}, reached=False), host("b", {"kernel": KERNEL, "runtime": RUNTIME,
                                                                    "model": MODEL})])
    assert [row["status"] for row in report["hosts"]] == ["unreachable", "in-sync"]
    assert report["counts"] == {"in-sync": 1, "drift": 0, "unreachable": 1}


def test_state_reader_names_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "kernel.json").write_text(json.dumps(KERNEL))
    (tmp_path / "runtime.json").write_text("{truncated")
    (tmp_path / "model.json").write_text("[1, 2]")
    (tmp_path / "notes.txt").write_text("not a state file")
    state = read_state(str(tmp_path))
    assert state["components"] == {"kernel": KERNEL}
    assert len(state["problems"]) == 2
    assert any("runtime.json: not readable JSON" in problem for problem in state["problems"])
    assert any("model.json: a JSON object was expected, found list" in problem for problem in state["problems"])


def test_state_reader_on_a_board_where_nothing_ran(tmp_path: Path) -> None:
    assert read_state(str(tmp_path / "absent")) == {"components": {}, "problems": []}


def test_a_runtime_record_written_before_the_rename_reads_as_the_current_one(tmp_path: Path) -> None:
    old = {key.replace("llama_cpp_ref", "llama_cpp_tag"): value for key, value in RUNTIME.items()}
    (tmp_path / "runtime.json").write_text(json.dumps(old))
    state = read_state(str(tmp_path))
    assert state["components"] == {"runtime": RUNTIME}
    [row] = fleet_drift([host("a", dict(state["components"], kernel=KERNEL, model=MODEL))])["hosts"]
    assert row["drift"] == [] and row["llama_cpp"] == "b6000", "an old record of the pinned runtime is not drift"
