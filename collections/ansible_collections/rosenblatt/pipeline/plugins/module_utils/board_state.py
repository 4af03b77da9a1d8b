# Copyright: rosenblatt developers
# MIT License
"""What the pipeline's stages recorded on a board: one `<component>.json` per stage under the state folder.

kernel.json (flash stage), runtime.json (runtime stage), model.json (model stage), verify.json (verify
stage). The drift report reads them; a file that is missing means the stage never ran there, and a file
that cannot be read is reported as such, never as a crash.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Fields renamed since boards started recording them: a record written before is read with the new name
# (the stage rewrites it with the new name the next time it runs).
RENAMED_FIELDS = {"runtime": {"llama_cpp_tag": "llama_cpp_ref"}}


def read_state(state_dir: str) -> dict[str, Any]:
    """{'components': {name: record}, 'problems': [...]}: every readable record, every unreadable file named."""
    components: dict[str, Any] = {}
    problems: list[str] = []
    try:
        names = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        names = []
    except OSError as error:
        return {"components": components, "problems": ["%s: %s" % (state_dir, error.strerror)]}
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(state_dir, name)
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError) as error:
            problems.append("%s: not readable JSON (%s)" % (path, error))
            continue
        if not isinstance(record, dict):
            problems.append("%s: a JSON object was expected, found %s" % (path, type(record).__name__))
            continue
        component = name[: -len(".json")]
        for old, new in RENAMED_FIELDS.get(component, {}).items():
            if old in record and new not in record:
                record[new] = record.pop(old)
        components[component] = record
    return {"components": components, "problems": problems}
