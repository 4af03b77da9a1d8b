# Copyright: rosenblatt developers
# MIT License
"""Put a pristine kernel source tree in the cache, from one of four kinds of source.

  git       a tag of a git repository (kernel.org stable in production): shallow clone of that tag
  tarball   a local .tar(.xz|.gz|.bz2) of a kernel tree
  dir       a local kernel tree, used in place (never written to)
  debian    Debian's linux-source-X.Y package (a .deb holding usr/src/linux-source-X.Y.tar.xz), fetched
            from a Debian suite with a private apt configuration (the machine's sources are not touched)

Each tree lands in `<cache>/sources/<key>/` under a temporary name first and is renamed when complete,
so an interrupted run leaves either nothing or a whole tree. `source_id` names the exact input (tag and
commit, package version and .deb sha256, tarball sha256, or a fingerprint of the directory): it is part
of the build's input hash.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from ansible_collections.rosenblatt.pipeline.plugins.module_utils.artifact_manifest import sha256_of

KINDS = ("git", "tarball", "dir", "debian")


class SourceError(Exception):
    """An expected failure, with a message for a person (no traceback)."""


@dataclass
class Source:
    changed: bool
    action: str  # present, cloned, extracted, used-in-place, would-fetch
    path: str
    source_id: str
    version: str  # kernel version from the tree's Makefile ("" in check mode before fetching)


def _run(command: list[str], what: str, cwd: str | None = None, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SourceError("%s: %s is not installed" % (what, command[0])) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SourceError("%s failed (%s): %s" % (what, " ".join(command[:3]), " | ".join(detail)))
    return done.stdout


def kernel_version(tree: str) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the top-level Makefile; SourceError if tree is not a kernel."""
    makefile = os.path.join(tree, "Makefile")
    if not os.path.isfile(makefile) or not os.path.isfile(os.path.join(tree, "Kconfig")):
        raise SourceError("%s is not a kernel source tree (no top-level Makefile and Kconfig)" % tree)
    fields: dict[str, str] = {}
    with open(makefile, encoding="utf-8", errors="replace") as handle:
        for line in handle.readlines()[:12]:
            match = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", line)
            if match:
                fields[match.group(1)] = match.group(2)
    if "VERSION" not in fields:
        raise SourceError("%s/Makefile has no VERSION line: not a kernel source tree" % tree)
    return "%s.%s.%s%s" % (fields["VERSION"], fields.get("PATCHLEVEL", "0"), fields.get("SUBLEVEL", "0"),
                           fields.get("EXTRAVERSION", ""))


def _single_tree(directory: str) -> str:
    """The kernel tree inside an extracted archive: the directory itself or its only subdirectory."""
    if os.path.isfile(os.path.join(directory, "Makefile")):
        return directory
    entries = [e for e in os.listdir(directory) if os.path.isdir(os.path.join(directory, e))]
    if len(entries) == 1:
        return os.path.join(directory, entries[0])
    raise SourceError("archive does not hold a single kernel tree (top level: %s)" % ", ".join(sorted(entries)))


def _install_tree(extracted_root: str, destination: str) -> None:
    """Move the tree found in extracted_root to destination atomically (one rename). If another run put
    the same tree there meanwhile, theirs stays and ours is dropped with the scratch folder."""
    tree = _single_tree(extracted_root)
    kernel_version(tree)
    try:
        os.rename(tree, destination)
    except OSError:
        if not os.path.isdir(destination):
            raise


def _extract_tarball(tarball: str, destination: str) -> None:
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".extract-") as scratch:
        # xz -T0 decompresses with every core; tar picks the right filter for other formats.
        if tarball.endswith(".xz"):
            command = "xz -T0 -dc %s | tar -x -C %s" % (_quote(tarball), _quote(scratch))
            _run(["bash", "-o", "pipefail", "-c", command], "extracting %s" % tarball)
        else:
            _run(["tar", "-x", "-f", tarball, "-C", scratch], "extracting %s" % tarball)
        _install_tree(scratch, destination)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def from_git(cache: str, url: str, tag: str, check_mode: bool) -> Source:
    key = "git-%s-%s" % (hashlib.sha256(url.encode()).hexdigest()[:12], re.sub(r"[^A-Za-z0-9._-]", "_", tag))
    destination = os.path.join(cache, "sources", key)
    if os.path.isdir(destination):
        commit = _run(["git", "-C", destination, "rev-parse", "HEAD"], "reading the commit of %s" % tag).strip()
        return Source(False, "present", destination, "git:%s@%s=%s" % (url, tag, commit), kernel_version(destination))
    remote = _run(["git", "ls-remote", "--tags", url, "refs/tags/%s" % tag, "refs/tags/%s^{}" % tag],
                  "listing the tags of %s" % url)
    if not remote.strip():
        raise SourceError("unknown tag %r: %s has no refs/tags/%s" % (tag, url, tag))
    if check_mode:
        return Source(True, "would-fetch", destination, "git:%s@%s" % (url, tag), "")
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(destination), prefix=".clone-") as scratch:
        clone = os.path.join(scratch, "linux")
        _run(["git", "clone", "--quiet", "--depth", "1", "--branch", tag, url, clone], "cloning %s %s" % (url, tag))
        commit = _run(["git", "-C", clone, "rev-parse", "HEAD"], "reading the commit of %s" % tag).strip()
        _install_tree(scratch, destination)
    return Source(True, "cloned", destination, "git:%s@%s=%s" % (url, tag, commit), kernel_version(destination))


def from_tarball(cache: str, tarball: str, check_mode: bool) -> Source:
    if not os.path.isfile(tarball):
        raise SourceError("kernel source tarball %s does not exist" % tarball)
    digest = sha256_of(tarball)
    destination = os.path.join(cache, "sources", "tarball-%s" % digest[:16])
    source_id = "tarball:%s" % digest
    if os.path.isdir(destination):
        return Source(False, "present", destination, source_id, kernel_version(destination))
    if check_mode:
        return Source(True, "would-fetch", destination, source_id, "")
    _extract_tarball(tarball, destination)
    return Source(True, "extracted", destination, source_id, kernel_version(destination))


def directory_fingerprint(tree: str) -> str:
    """sha256 over every file's path, size and mtime: a changed file changes it (contents are not read)."""
    digest = hashlib.sha256()
    for root, directories, files in os.walk(tree):
        directories.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            digest.update(("%s\0%d\0%d\n" % (os.path.relpath(path, tree), info.st_size, info.st_mtime_ns)).encode())
    return digest.hexdigest()


def from_dir(tree: str) -> Source:
    if not os.path.isdir(tree):
        raise SourceError("kernel source directory %s does not exist" % tree)
    version = kernel_version(tree)
    return Source(False, "used-in-place", tree, "dir:%s:%s" % (os.path.realpath(tree), directory_fingerprint(tree)),
                  version)


def apt_options(state: str, mirror: str, suite: str, architecture: str = "") -> list[str]:
    """apt options for a private configuration in `state`: the machine's own sources and state are untouched.
    With `architecture`, package indexes of that (foreign) architecture are fetched instead of the host's."""
    os.makedirs(os.path.join(state, "lists", "partial"), exist_ok=True)
    os.makedirs(os.path.join(state, "cache", "archives", "partial"), exist_ok=True)
    sources = os.path.join(state, "sources.list")
    line = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n" % (mirror, suite)
    current = ""
    if os.path.exists(sources):
        with open(sources, encoding="utf-8") as handle:
            current = handle.read()
    if current != line:
        with open(sources + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(line)
        os.rename(sources + ".tmp", sources)
    return ["-o", "Dir::Etc::SourceList=" + sources, "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", "Dir::State::Lists=" + os.path.join(state, "lists"),
            "-o", "Dir::Cache=" + os.path.join(state, "cache"), "-o", "APT::Sandbox::User=root",
            *(["-o", "APT::Architecture=" + architecture, "-o", "APT::Architectures=" + architecture]
              if architecture else [])]


def from_debian(cache: str, package: str, version: str, mirror: str, suite: str, *, check_mode: bool) -> Source:
    """Debian's linux-source package: download the pinned version once (private apt config), extract once."""
    destination = os.path.join(cache, "sources", "debian-%s-%s" % (package, version))
    debs = os.path.join(cache, "debs")
    deb_name = "%s_%s_all.deb" % (package, version.replace(":", "%3a"))
    deb = os.path.join(debs, deb_name)
    if os.path.isdir(destination) and os.path.isfile(deb + ".sha256"):
        with open(deb + ".sha256", encoding="utf-8") as handle:
            digest = handle.read().strip()
        return Source(False, "present", destination, "debian:%s=%s sha256:%s" % (package, version, digest),
                      kernel_version(destination))
    if check_mode:
        return Source(True, "would-fetch", destination, "debian:%s=%s" % (package, version), "")
    os.makedirs(debs, exist_ok=True)
    if not os.path.isfile(deb):
        options = apt_options(os.path.join(cache, "apt", suite), mirror, suite)
        _run(["apt-get", *options, "-q", "update"], "apt-get update for %s %s" % (mirror, suite))
        policy = _run(["apt-cache", *options, "policy", package], "apt-cache policy %s" % package)
        available = re.findall(r"^\s+(?:\*\*\* )?(\S+) \d+\s*$", policy, flags=re.M)
        if version not in available:
            raise SourceError("%s version %s is not in %s %s (available: %s)"
                              % (package, version, mirror, suite, ", ".join(available) or "none"))
        with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as scratch:
            _run(["apt-get", *options, "-q", "download", "%s=%s" % (package, version)],
                 "downloading %s=%s" % (package, version), cwd=scratch)
            [downloaded] = glob.glob(os.path.join(scratch, "*.deb"))
            os.rename(downloaded, deb)
    digest = sha256_of(deb)
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".deb-") as scratch:
        unpack = "dpkg-deb --fsys-tarfile %s | tar -x -C %s --wildcards '*usr/src/*.tar.xz'" % (_quote(deb),
                                                                                                _quote(scratch))
        _run(["bash", "-o", "pipefail", "-c", unpack], "unpacking %s" % deb)
        tarballs = glob.glob(os.path.join(scratch, "usr", "src", "*.tar.xz"))
        if len(tarballs) != 1:
            raise SourceError("%s holds %d source tarballs under usr/src, expected one" % (deb, len(tarballs)))
        shutil.rmtree(destination, ignore_errors=True)
        _extract_tarball(tarballs[0], destination)
    with open(deb + ".sha256.tmp", "w", encoding="utf-8") as handle:
        handle.write(digest + "\n")
    os.rename(deb + ".sha256.tmp", deb + ".sha256")  # written last: marks the extracted tree complete
    return Source(True, "extracted", destination, "debian:%s=%s sha256:%s" % (package, version, digest),
                  kernel_version(destination))


def prepare(kind: str, cache: str, *, git_url: str = "", git_tag: str = "", path: str = "",
            debian_package: str = "", debian_version: str = "", debian_mirror: str = "",
            debian_suite: str = "", check_mode: bool = False) -> Source:
    if kind == "git":
        if not git_url or not git_tag:
            raise SourceError("source type git needs a URL and a tag (got url=%r, tag=%r)" % (git_url, git_tag))
        return from_git(cache, git_url, git_tag, check_mode)
    if kind == "tarball":
        return from_tarball(cache, path, check_mode)
    if kind == "dir":
        return from_dir(path)
    if kind == "debian":
        if not (debian_package and debian_version and debian_mirror and debian_suite):
            raise SourceError("source type debian needs package, version, mirror and suite")
        return from_debian(cache, debian_package, debian_version, debian_mirror, debian_suite, check_mode=check_mode)
    raise SourceError("unknown kernel source type %r (expected one of %s)" % (kind, ", ".join(KINDS)))
