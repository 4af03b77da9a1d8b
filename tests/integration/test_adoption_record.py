"""adoption_record (the adoption's memory of the files it changed) through Ansible on the controller: files put
back byte for byte with their mode, new files removed, the first record kept on a re-run, check mode writes
nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import BIN, REPO


def run(arguments: dict, check: bool = False) -> dict:
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    result = subprocess.run([str(BIN / "ansible"), "localhost", "-m", "rosenblatt.pipeline.adoption_record",
                             "-a", json.dumps(arguments), *(["--check"] if check else [])],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False)
    # The minimal callback: "localhost | CHANGED => {...}" (a failure's message is on stderr too).
    header, _, body = result.stdout.rpartition("localhost | ")[2].partition(" => ")
    assert header in ("SUCCESS", "CHANGED", "FAILED!"), result.stdout + result.stderr
    return json.loads(body)


def test_recorded_files_come_back_exactly(tmp_path: Path) -> None:
    defaults, grubenv, script = tmp_path / "grub", tmp_path / "grubenv", tmp_path / "42_rosenblatt"
    defaults.write_bytes(b'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n')
    defaults.chmod(0o640)
    grubenv.write_bytes(b"# GRUB Environment Block\n" + b"#" * 998)
    record = tmp_path / "state/adoption.json"
    paths = {"record": str(record), "paths": [str(defaults), str(grubenv), str(script)],
             "notes": {"grub_default": "0"}}

    checked = run(paths, check=True)
    assert checked["changed"] and not record.exists()
    first = run(paths)
    assert first["changed"] and first["recorded"] == [str(defaults), str(grubenv), str(script)]
    assert first["files"][str(script)] == {"existed": False, "sha256": None}

    # What the adoption then does, and a re-run that must not record rosenblatt's own versions.
    defaults.write_bytes(b"GRUB_DEFAULT=saved\nGRUB_TIMEOUT=5\n")
    grubenv.write_bytes(b"# GRUB Environment Block\nsaved_entry=linux-7.2\n" + b"#" * 976)
    script.write_text("#!/bin/sh\n")
    again = run(paths | {"notes": {"grub_default": "saved"}})
    assert not again["changed"] and again["notes"] == {"grub_default": "0"}

    assert run({"record": str(record), "state": "restored"}, check=True)["changed"]
    assert script.exists() and record.exists()  # check mode put nothing back
    restored = run({"record": str(record), "state": "restored"})
    assert restored["changed"] and restored["notes"] == {"grub_default": "0"}
    assert defaults.read_bytes() == b"GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n" and defaults.stat().st_mode & 0o777 == 0o640
    assert grubenv.read_bytes() == b"# GRUB Environment Block\n" + b"#" * 998
    assert not script.exists() and not record.exists()
    assert not run({"record": str(record), "state": "restored"})["changed"]


def test_a_damaged_record_is_named_not_guessed(tmp_path: Path) -> None:
    record = tmp_path / "adoption.json"
    record.write_text("{not json")
    result = run({"record": str(record), "state": "restored"})
    assert f"{record} is not JSON" in result["msg"] and "restore the files it names by hand" in result["msg"]
    assert "Traceback" not in json.dumps(result)
