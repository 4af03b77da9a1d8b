# Copyright: rosenblatt developers
# MIT License
"""Writing a file so that a reader, or a run interrupted at any point, sees the old content or the new, never
part of it: written beside the target, flushed to disk, then renamed over it."""

from __future__ import annotations

import os

PARTIAL_SUFFIX = ".rosenblatt-partial"


def write_atomically(path: str, data: bytes | str, mode: int | None = None,
                     owner: tuple[int, int] | None = None) -> None:
    """Replace path with data; mode and owner (uid, gid) are set before the rename, so they never lag."""
    partial = path + PARTIAL_SUFFIX
    with open(partial, "wb") as stream:
        stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        stream.flush()
        os.fsync(stream.fileno())
    if mode is not None:
        os.chmod(partial, mode)
    if owner is not None:
        os.chown(partial, *owner)
    os.replace(partial, path)
