#!/usr/bin/python
# Copyright: rosenblatt developers
# MIT License
"""Ansible module: record files exactly as they are before rosenblatt changes them, and put them back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: adoption_record
short_description: Record files before an adoption changes them; restore them byte for byte
description:
  - C(state=recorded) keeps each of O(paths) that the record does not hold yet as it is now (contents, mode,
    owner, or that it does not exist) in the record file, a JSON file written through a temporary file and a
    rename. A path already recorded keeps its first record, so a re-run never records rosenblatt's own version.
  - C(state=restored) puts every recorded file back (contents, mode, owner) or removes it when it did not exist,
    then removes the record. Nothing is done when there is no record.
  - Supports check mode (says what it would record or restore).
options:
  record:
    description: The record file.
    type: path
    required: true
  state:
    description: C(recorded) or C(restored).
    type: str
    choices: [recorded, restored]
    default: recorded
  paths:
    description: Files to record (state recorded).
    type: list
    elements: path
    default: []
  notes:
    description: Facts kept beside the files (what the adoption found), returned on restore.
    type: dict
    default: {}
author:
  - rosenblatt developers
"""

EXAMPLES = r"""
- name: Record what the adoption changes
  rosenblatt.pipeline.adoption_record:
    record: /var/lib/rosenblatt/state/adoption.json
    paths: [/etc/default/grub, /boot/grub/grubenv, /etc/grub.d/42_rosenblatt]
"""

RETURN = r"""
files:
  description: Per recorded path, C(existed) and C(sha256) (before the change).
  type: dict
  returned: always
recorded:
  description: Paths recorded by this run.
  type: list
  elements: str
  returned: state recorded
restored:
  description: Paths put back (or removed) by this run.
  type: list
  elements: str
  returned: state restored
notes:
  description: The notes kept with the record.
  type: dict
  returned: always
"""

import base64
import datetime
import hashlib
import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.atomic_file import write_atomically


def _snapshot(path: str) -> dict[str, Any]:
    if not os.path.lexists(path):
        return {"existed": False}
    with open(path, "rb") as stream:
        data = stream.read()
    info = os.stat(path)
    return {"existed": True, "sha256": hashlib.sha256(data).hexdigest(), "mode": info.st_mode & 0o7777,
            "uid": info.st_uid, "gid": info.st_gid, "content": base64.b64encode(data).decode("ascii")}


def _summary(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {path: {"existed": entry["existed"], "sha256": entry.get("sha256")} for path, entry in files.items()}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "record": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["recorded", "restored"], "default": "recorded"},
            "paths": {"type": "list", "elements": "path", "default": []},
            "notes": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    record_file = params["record"]
    try:
        with open(record_file, encoding="utf-8") as stream:
            record = json.load(stream)
    except FileNotFoundError:
        record = None
    except ValueError as exc:
        module.fail_json(msg="%s is not JSON (%s): the adoption record is damaged; restore the files it names by hand"
                         % (record_file, exc))
    if params["state"] == "restored":
        if record is None:
            module.exit_json(changed=False, files={}, restored=[], notes={})
        files = record["files"]
        if not module.check_mode:
            for path, entry in files.items():
                if entry["existed"]:
                    write_atomically(path, base64.b64decode(entry["content"]), entry["mode"],
                                     (entry["uid"], entry["gid"]))
                elif os.path.lexists(path):
                    os.unlink(path)
            os.unlink(record_file)
        module.exit_json(changed=True, files=_summary(files), restored=sorted(files), notes=record.get("notes", {}))
    record = record or {"format": 1, "recorded": datetime.datetime.now(datetime.UTC).isoformat(),
                        "files": {}, "notes": {}}
    new = [path for path in params["paths"] if path not in record["files"]]
    notes = dict(params["notes"], **record.get("notes", {}))
    changed = bool(new) or notes != record.get("notes", {})
    for path in new:
        record["files"][path] = _snapshot(path)
    record["notes"] = notes
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(record_file), mode=0o755, exist_ok=True)
        write_atomically(record_file, json.dumps(record, indent=2, sort_keys=True) + "\n", 0o600)
    module.exit_json(changed=changed, files=_summary(record["files"]), recorded=new, notes=notes)


if __name__ == "__main__":
    main()
