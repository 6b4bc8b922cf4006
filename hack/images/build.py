#!/usr/bin/env python3
"""Builds the project's container images from Debian packages, with no registry, no Dockerfile and no daemon.

Why it exists: this machine reaches no container registry, so no base image can be pulled and no `docker build` can
run. Each image is described by an `image.toml` recipe (Debian packages, files, build-time commands, runtime
settings). The builder resolves the packages' dependencies with apt, extracts the .debs into a root filesystem and
writes a byte-reproducible OCI image archive (one gzip layer per recipe; a `from` parent's layers come first and are
shared by digest) that `ctr images import`, `docker load` and `podman load` accept. Archives are cached under a
content key, so a re-run with unchanged inputs prints "cached"; `--import` loads them into containerd's k8s.io
namespace unless containerd already holds the same manifest under that reference.

usage: build.py [--tag TAG] [--out DIR] [--import [--address SOCK] [--ctr PATH]] (--all | RECIPE_DIR...)
  Builds the given recipes (--all: every recipe of the repository, see find_recipes) and their `from` ancestors,
  parents first. Archives go to --out (default $KUBELESS_CACHE/images, see cache_root) as <name>-<key[:16]>.tar.
  --import runs `ctr -a SOCK -n k8s.io images import --base-name localhost/kubeless/<name> ARCHIVE`.
  stdout gets one line per image (name, reference, key[:16], MB of gzip layers, seconds, built|cached
  [, imported|in containerd]); apt's and ctr's chatter goes to stderr.

Recipe keys (all optional but `name`):
  name        the image becomes localhost/kubeless/<name>:<tag>
  from        `name` of the parent recipe (among the given dirs or hack/images/*)
  debs        Debian packages; Depends/Pre-Depends are added recursively (first alternative of an `a | b` group),
              except what the parent already holds and EXCLUDED_DEPENDENCIES; maintainer scripts are not run
  files       [{src, dst, mode?}]: src relative to the recipe folder, or to the repo root when it starts with "//";
              a folder is copied recursively into dst; mode (octal string) defaults to 0755/0644 by the exec bit
  symlinks    {"/path/in/image" = "target"}
  run         host commands run after the files and symlinks, with {rootfs} (this image's own layer only) and
              {recipe} (the recipe folder) substituted, in LC_ALL=C
  user, workdir, env, cmd, entrypoint   image config; unset ones are inherited from the parent
Every layer also gets /etc/passwd and /etc/group (root, and kubeless = 1000 with home /tmp) and a 1777 /tmp;
/bin, /sbin, /lib and /lib64 are merged into /usr and left as symlinks.

One file, although long: `python3 hack/images/build.py` must run with nothing but the standard library on a fresh
machine, before any virtualenv exists, and the OCI format, apt resolution and layer writing share its types.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # the shared API package: image names (stdlib only, like this tool)
from kubeless_api import meta  # noqa: E402

FORMAT_VERSION = 1  # bump when a change to this file changes the archives it writes
IMAGES_DIR = REPO_ROOT / "hack" / "images"
DEFAULT_TAG = "0.1.0"
CONTAINERD_NAMESPACE = "k8s.io"
# Candidates as the configured archives offer them, whatever this host has installed: a package installed from a
# now-disabled source (like a vendor's nodejs) would otherwise be the candidate, at a version no mirror serves.
APT_CACHE = ("apt-cache", "-o", "Dir::State::status=/dev/null")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"

# Dependencies that only serve package management or maintainer scripts, which a container never runs.
# They are dropped when reached through Depends; a recipe that lists one in `debs` still gets it.
EXCLUDED_DEPENDENCIES = frozenset({
    "adduser", "base-files", "cdebconf", "debconf", "debianutils", "dpkg", "init-system-helpers", "install-info",
    "libc-bin", "login", "lsb-base", "passwd", "perl", "perl-base", "sensible-utils", "usr-is-merged", "usrmerge",
})
PRUNED_DIRS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian")
MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib64")
SKIPPED_SOURCE_NAMES = ("__pycache__",)
SKIPPED_SOURCE_SUFFIXES = (".pyc",)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nkubeless:x:1000:1000:kubeless:/tmp:/bin/sh\n"
GROUP = "root:x:0:\nkubeless:x:1000:\n"
RECIPE_KEYS = frozenset({"name", "from", "debs", "files", "run", "symlinks", "user", "workdir", "env", "cmd",
                         "entrypoint"})
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
RECIPE_INPUT_PATTERN = re.compile(r"\{recipe\}/([^\s'\"*?;|&<>()$]+)")
UNSEARCHED_DIRS = frozenset({".cluster", ".git", "dist"})  # top-level folders find_recipes skips

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class BuildError(Exception):
    """A recipe or build input is wrong; the message says which and why."""


# --- recipes ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileCopy:
    src: str
    dst: str
    mode: int | None


@dataclass(frozen=True)
class Recipe:
    name: str
    folder: Path
    text: str
    parent: str | None
    debs: tuple[str, ...]
    files: tuple[FileCopy, ...]
    symlinks: tuple[tuple[str, str], ...]
    run: tuple[tuple[str, ...], ...]
    user: str | None
    workdir: str | None
    env: tuple[tuple[str, str], ...]
    cmd: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BuildError(f"{where}: expected a list of strings")
    return tuple(value)


def _string_table(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise BuildError(f"{where}: expected a table of strings")
    return tuple(value.items())


def _optional_string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BuildError(f"{where}: {key} must be a string")
    return value


def _file_copy(entry: Any, where: str) -> FileCopy:
    if (not isinstance(entry, dict) or set(entry) - {"src", "dst", "mode"} or not {"src", "dst"} <= set(entry)
            or not all(isinstance(entry[key], str) for key in ("src", "dst"))):
        raise BuildError(f"{where}: each files entry needs src and dst strings (and may have mode)")
    if not entry["dst"].startswith("/"):
        raise BuildError(f"{where}: files dst {entry['dst']!r} must be absolute")
    mode = entry.get("mode")
    try:
        return FileCopy(entry["src"], entry["dst"], None if mode is None else int(mode, 8))
    except (TypeError, ValueError):
        raise BuildError(f"{where}: files mode {mode!r} must be an octal string such as \"0644\"") from None


def parse_recipe(text: str, folder: Path) -> Recipe:
    where = str(folder / "image.toml")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BuildError(f"{where}: {error}") from None
    if unknown := set(data) - RECIPE_KEYS:
        raise BuildError(f"{where}: unknown keys {sorted(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BuildError(f"{where}: name must match {NAME_PATTERN.pattern}")
    runs = data.get("run", [])
    if not isinstance(runs, list):
        raise BuildError(f"{where}: run must be a list of commands")
    return Recipe(
        name=name,
        folder=folder,
        text=text,
        parent=_optional_string(data, "from", where),
        debs=_strings(data.get("debs", []), f"{where}: debs"),
        files=tuple(_file_copy(entry, where) for entry in data.get("files", [])),
        symlinks=_string_table(data.get("symlinks", {}), f"{where}: symlinks"),
        run=tuple(_strings(command, f"{where}: run") for command in runs),
        user=_optional_string(data, "user", where),
        workdir=_optional_string(data, "workdir", where),
        env=_string_table(data.get("env", {}), f"{where}: env"),
        cmd=_strings(data["cmd"], f"{where}: cmd") if "cmd" in data else None,
        entrypoint=_strings(data["entrypoint"], f"{where}: entrypoint") if "entrypoint" in data else None,
    )


def load_recipe(folder: Path) -> Recipe:
    path = folder / "image.toml"
    if not path.is_file():
        raise BuildError(f"{path}: no such recipe")
    return parse_recipe(path.read_text(), folder.resolve())


def build_order(requested: Sequence[Recipe], search_dirs: Sequence[Path]) -> list[Recipe]:
    """The requested recipes and their ancestors, every parent before its children."""
    by_name: dict[str, Recipe] = {}
    for recipe in requested:
        if recipe.name in by_name and by_name[recipe.name].folder != recipe.folder:
            raise BuildError(f"two recipes are named {recipe.name}: {by_name[recipe.name].folder}, {recipe.folder}")
        by_name[recipe.name] = recipe
    ordered: list[Recipe] = []

    def visit(recipe: Recipe, chain: tuple[str, ...]) -> None:
        if recipe.name in chain:
            raise BuildError(f"recipes inherit in a cycle: {' -> '.join((*chain, recipe.name))}")
        if recipe.parent is not None:
            if recipe.parent not in by_name:
                by_name[recipe.parent] = find_recipe(recipe.parent, search_dirs)
            visit(by_name[recipe.parent], (*chain, recipe.name))
        if recipe not in ordered:
            ordered.append(recipe)

    for recipe in requested:
        visit(recipe, ())
    return ordered


def find_recipes(repo_root: Path = REPO_ROOT) -> list[Path]:
    """Every recipe folder (one holding an image.toml) in the repository, sorted: what `build.py --all` builds for
    `make images`, `make test` and the local cluster.

    Not searched: .cluster/ (the local cluster's state: containerd's root holds unpacked images, and kubelet's
    folders can be large), dist/ (build outputs) and .git/.
    """
    found = []
    for folder, subfolders, files in os.walk(repo_root):
        if Path(folder) == repo_root:
            subfolders[:] = [name for name in subfolders if name not in UNSEARCHED_DIRS]
        if "image.toml" in files:
            found.append(Path(folder))
    return sorted(found)


def find_recipe(name: str, search_dirs: Sequence[Path]) -> Recipe:
    for search_dir in search_dirs:
        for path in sorted(search_dir.glob("*/image.toml")):
            recipe = load_recipe(path.parent)
            if recipe.name == name:
                return recipe
    raise BuildError(f"no recipe named {name} among the given folders or in {', '.join(map(str, search_dirs))}")


# --- Debian packages -------------------------------------------------------------------------------------------

def parse_apt_depends(text: str) -> dict[str, list[tuple[str, ...]]]:
    """`apt-cache depends [--recurse]` output as package -> dependency groups.

    A group lists the concrete packages that satisfy it, in apt's order of preference: alternatives joined by `|`
    share a group, and a virtual package (`<name>`) stands for the providers listed under it.
    """
    graph: dict[str, list[tuple[str, ...]]] = {}
    package: str | None = None
    group: list[str] = []
    group_continues = False

    def close_group() -> None:
        if package is not None and group:
            graph[package].append(tuple(group))
        group.clear()

    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            close_group()
            package = line.strip()
            graph.setdefault(package, [])
            continue
        entry = line.strip()
        if line.startswith("    "):
            group.append(entry)  # a provider of the virtual package named on the line before
            continue
        if not group_continues:
            close_group()
        group_continues = entry.startswith("|")
        target = entry.lstrip("|").split(": ", 1)[1]
        if not target.startswith("<"):
            group.append(target)
    close_group()
    return graph


def dependency_closure(wanted: Sequence[str], graph: Mapping[str, Sequence[tuple[str, ...]]],
                       provided: frozenset[str], excluded: frozenset[str]) -> list[str]:
    """The packages to install for `wanted` on top of `provided`, sorted.

    A dependency group counts as met when one of its packages is installed, provided or excluded; otherwise its
    first package is installed.
    """
    chosen = [name for name in dict.fromkeys(wanted) if name not in provided]
    installed = set(chosen)
    queue = list(chosen)
    while queue:
        for group in graph.get(queue.pop(0), ()):
            if any(name in installed or name in provided or name in excluded for name in group):
                continue
            installed.add(group[0])
            queue.append(group[0])
    return sorted(installed)


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    architecture: str

    @property
    def file_name(self) -> str:
        """The name `apt-get download` gives the file (an epoch's colon is escaped)."""
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"


def parse_apt_show(show_output: str) -> dict[str, Deb]:
    """Package -> candidate, from `apt-cache show --no-all-versions` output."""
    debs: dict[str, Deb] = {}
    for stanza in show_output.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if "Package" in fields:
            debs[fields["Package"]] = Deb(fields["Package"], fields["Version"], fields["Architecture"])
    return debs


def _capture(command: Sequence[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def apt_state() -> str:
    """A fingerprint that changes whenever `apt-get update` or the apt configuration can change a candidate."""
    digest = hashlib.sha256()
    lists = Path("/var/lib/apt/lists")
    paths = [*(lists.iterdir() if lists.is_dir() else ()), *Path("/etc/apt").rglob("*")]
    for path in sorted(paths):
        if path.is_file():
            status = path.stat()
            digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def resolve_debs(wanted: Sequence[str], provided: frozenset[str], resolution_cache: Path) -> list[Deb]:
    """The candidate .debs that the image's own layer installs, sorted by package.

    apt-cache needs about a second per call, so a resolution is kept until the apt state changes.
    """
    if not wanted:
        return []
    question = canonical_json([FORMAT_VERSION, apt_state(), list(wanted), sorted(provided),
                               sorted(EXCLUDED_DEPENDENCIES)])
    cached = resolution_cache / f"{hashlib.sha256(question).hexdigest()}.json"
    if cached.is_file():
        return [Deb(*fields) for fields in json.loads(cached.read_text())]
    graph = parse_apt_depends(_capture([
        *APT_CACHE, "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
        "--no-replaces", "--no-enhances", *wanted]))
    packages = dependency_closure(wanted, graph, provided, EXCLUDED_DEPENDENCIES)
    candidates = parse_apt_show(_capture([*APT_CACHE, "show", "--no-all-versions", *packages])) if packages else {}
    if missing := [name for name in packages if name not in candidates]:
        raise BuildError(f"no installable candidate for {', '.join(missing)} (run apt-get update?)")
    debs = [candidates[name] for name in packages]
    resolution_cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}")
    partial.write_text(json.dumps([[deb.package, deb.version, deb.architecture] for deb in debs]))
    os.replace(partial, cached)
    return debs


def download_debs(debs: Sequence[Deb], deb_cache: Path) -> list[Path]:
    deb_cache.mkdir(parents=True, exist_ok=True)
    if missing := [deb for deb in debs if not (deb_cache / deb.file_name).is_file()]:
        subprocess.run(["apt-get", "download", "-q", *(f"{deb.package}={deb.version}" for deb in missing)],
                       cwd=deb_cache, check=True, stdout=sys.stderr)
    paths = [deb_cache / deb.file_name for deb in debs]
    if absent := [path.name for path in paths if not path.is_file()]:
        raise BuildError(f"apt-get download did not produce {', '.join(absent)}")
    return paths


# --- content key -----------------------------------------------------------------------------------------------

def resolve_source(src: str, recipe_folder: Path, repo_root: Path) -> Path:
    return repo_root / src[2:] if src.startswith("//") else recipe_folder / src


def iter_source_files(source: Path) -> list[tuple[str, Path]]:
    """(path relative to `source`, file) for a file ("" relative path) or every file under a folder, sorted."""
    if source.is_file():
        return [("", source)]
    if not source.is_dir():
        raise BuildError(f"{source}: no such file or folder")
    found = []
    for folder, subfolders, files in os.walk(source):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_SOURCE_NAMES)
        for name in files:
            if not name.endswith(SKIPPED_SOURCE_SUFFIXES):
                path = Path(folder, name)
                found.append((path.relative_to(source).as_posix(), path))
    return sorted(found)


def run_inputs(recipe: Recipe) -> list[Path]:
    """Files of the recipe folder that its run commands read, named as {recipe}/<path>."""
    paths = {recipe.folder / match for command in recipe.run for arg in command
             for match in RECIPE_INPUT_PATTERN.findall(arg)}
    return sorted(path for path in paths if path.exists())


def is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def key_inputs(recipe: Recipe, repo_root: Path) -> list[tuple[str, bytes]]:
    """(label, bytes) of every local file that ends up in or shapes the image."""
    inputs = []
    for copy in recipe.files:
        for relative, path in iter_source_files(resolve_source(copy.src, recipe.folder, repo_root)):
            inputs.append((f"file {copy.src}/{relative} x={is_executable(path)}", path.read_bytes()))
    for source in run_inputs(recipe):
        for relative, path in iter_source_files(source):
            inputs.append((f"run {source.relative_to(recipe.folder).as_posix()}/{relative}", path.read_bytes()))
    return inputs


def content_key(*, recipe_text: str, inputs: Iterable[tuple[str, bytes]], deb_files: Iterable[str],
                parent_key: str | None, tag: str) -> str:
    digest = hashlib.sha256()

    def add(*parts: str | bytes) -> None:
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)

    add("format", str(FORMAT_VERSION), "tag", tag, "parent", parent_key or "", "recipe", recipe_text)
    for label, data in sorted(inputs):
        add("input", label, data)
    for name in sorted(deb_files):
        add("deb", name)
    return digest.hexdigest()


# --- root filesystem -------------------------------------------------------------------------------------------

def image_path(path: str) -> str:
    """An absolute image path as a path relative to the rootfs, with /bin, /sbin, /lib, /lib64 under usr/."""
    relative = posixpath.normpath(path).lstrip("/")
    if not path.startswith("/") or relative in ("", ".") or relative.split("/")[0] == "..":
        raise BuildError(f"{path!r} is not an absolute path inside the image")
    top = relative.split("/")[0]
    return f"usr/{relative}" if top in MERGED_USR_DIRS else relative


def prepare_target(rootfs: Path, relative: str) -> Path:
    """rootfs/relative with its missing parent folders created (0755); refuses a path through a symlink."""
    folder = rootfs
    for part in relative.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise BuildError(f"/{relative} goes through the symlink /{folder.relative_to(rootfs)}")
        if not folder.exists():
            folder.mkdir(mode=0o755)
    target = rootfs / relative
    if target.is_symlink() or target.is_file():
        target.unlink()
    return target


def move_tree(source: Path, destination: Path) -> None:
    """Moves the entries of folder `source` into folder `destination`, merging folders, replacing the rest."""
    if not destination.is_dir():
        destination.mkdir(mode=0o755, parents=True)
    for entry in sorted(source.iterdir()):
        target = destination / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            move_tree(entry, target)
            entry.rmdir()
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


def merge_usr(rootfs: Path) -> None:
    for name in MERGED_USR_DIRS:
        legacy = rootfs / name
        if legacy.is_dir() and not legacy.is_symlink():
            move_tree(legacy, rootfs / "usr" / name)
            legacy.rmdir()
            legacy.symlink_to(f"usr/{name}")


def extract_debs(debs: Sequence[Path], rootfs: Path) -> None:
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(rootfs)], check=True)
    for pruned in PRUNED_DIRS:
        shutil.rmtree(rootfs / pruned, ignore_errors=True)


def install_files(recipe: Recipe, rootfs: Path, repo_root: Path) -> None:
    for copy in recipe.files:
        for relative, path in iter_source_files(resolve_source(copy.src, recipe.folder, repo_root)):
            target = prepare_target(rootfs, image_path(posixpath.join(copy.dst, relative) if relative else copy.dst))
            shutil.copyfile(path, target)
            default_mode = 0o755 if is_executable(path) else 0o644
            target.chmod(copy.mode if copy.mode is not None else default_mode)


def install_symlinks(recipe: Recipe, rootfs: Path) -> None:
    for link, target in recipe.symlinks:
        prepare_target(rootfs, image_path(link)).symlink_to(target)


def run_commands(recipe: Recipe, rootfs: Path) -> None:
    env = {**os.environ, "LC_ALL": "C", "SOURCE_DATE_EPOCH": "0"}
    for command in recipe.run:
        argv = [arg.replace("{rootfs}", str(rootfs)).replace("{recipe}", str(recipe.folder)) for arg in command]
        subprocess.run(argv, cwd=recipe.folder, env=env, check=True)


def install_accounts(rootfs: Path) -> None:
    for relative, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        target = prepare_target(rootfs, relative)
        target.write_text(text)
        target.chmod(0o644)
    tmp = rootfs / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def assemble_rootfs(recipe: Recipe, debs: Sequence[Path], rootfs: Path, repo_root: Path) -> None:
    """This image's own layer: its debs, files, symlinks and run outputs, the accounts and /tmp."""
    extract_debs(debs, rootfs)
    merge_usr(rootfs)
    install_files(recipe, rootfs, repo_root)
    install_symlinks(recipe, rootfs)
    run_commands(recipe, rootfs)
    merge_usr(rootfs)
    install_accounts(rootfs)


# --- layers and archives ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    digest: str  # "sha256:<hex>" of the gzip blob
    size: int  # bytes of the gzip blob
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    path: Path  # the gzip blob on disk


class HashingWriter:
    """A write-only stream that hashes and counts what passes through it to `target`.

    (typeshed's tarfile.open wants a readable, seekable file object; writing a tar only needs write and tell.)
    """

    def __init__(self, target: BinaryIO | gzip.GzipFile) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.target.flush()


def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def rootfs_entries(rootfs: Path) -> list[str]:
    """Every path under rootfs relative to it, sorted (so a folder comes before what it holds)."""
    entries = []
    for folder, subfolders, files in os.walk(rootfs):
        for name in subfolders + files:
            entries.append(Path(folder, name).relative_to(rootfs).as_posix())
    return sorted(entries)


def write_layer(rootfs: Path, destination: Path) -> Layer:
    """Writes rootfs as a reproducible gzip layer: sorted entries, mtime 0, owner 0:0, no device files."""
    with destination.open("wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for relative in rootfs_entries(rootfs):
                    info = tar.gettarinfo(str(rootfs / relative), arcname=relative)
                    if info is None or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                        continue
                    if info.isreg():
                        with (rootfs / relative).open("rb") as content:
                            tar.addfile(normalized(info), content)
                    else:
                        tar.addfile(normalized(info))
    return Layer(f"sha256:{compressed.sha256.hexdigest()}", compressed.size,
                 f"sha256:{uncompressed.sha256.hexdigest()}", destination)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def image_reference(name: str, tag: str) -> str:
    return meta.image(name, tag)


def image_config(recipe: Recipe, parent: Mapping[str, Any] | None, layers: Sequence[Layer],
                 history: str) -> dict[str, Any]:
    """The OCI image config: the parent's settings overridden by the recipe's, one history entry per layer."""
    inherited: Mapping[str, Any] = parent["config"] if parent else {}
    env = dict(item.split("=", 1) for item in inherited.get("Env", [f"PATH={DEFAULT_PATH}"]))
    env.update(recipe.env)
    settings: dict[str, Any] = {"Env": [f"{key}={value}" for key, value in env.items()]}
    own = {"User": recipe.user, "WorkingDir": recipe.workdir,
           "Cmd": None if recipe.cmd is None else list(recipe.cmd),
           "Entrypoint": None if recipe.entrypoint is None else list(recipe.entrypoint)}
    for key, value in own.items():
        chosen = value if value is not None else inherited.get(key)
        if chosen is not None:
            settings[key] = chosen
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [*(parent["history"] if parent else []), {"created": EPOCH, "created_by": history}],
    }


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = normalized(tarfile.TarInfo(name))
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_oci_archive(destination: BinaryIO, *, reference: str, config: Mapping[str, Any],
                      layers: Sequence[Layer]) -> str:
    """Writes an OCI image layout tar (plus a docker-style manifest.json) and returns the manifest digest."""
    config_bytes = canonical_json(config)
    config_digest = f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
    manifest_bytes = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": layer.digest, "size": layer.size} for layer in layers],
    })
    manifest_digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
    index_bytes = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": reference,
                            "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1]},
        }],
    })

    def blob_name(digest: str) -> str:
        return "blobs/" + digest.replace(":", "/", 1)

    docker_manifest = canonical_json([{"Config": blob_name(config_digest), "RepoTags": [reference],
                                       "Layers": [blob_name(layer.digest) for layer in layers]}])
    files: dict[str, bytes | Path] = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index_bytes,
        "manifest.json": docker_manifest,
        blob_name(config_digest): config_bytes,
        blob_name(manifest_digest): manifest_bytes,
        **{blob_name(layer.digest): layer.path for layer in layers},
    }
    with tarfile.open(fileobj=destination, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("blobs", "blobs/sha256"):
            info = normalized(tarfile.TarInfo(folder))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, content in sorted(files.items()):
            if isinstance(content, bytes):
                _add_bytes(tar, name, content)
            else:
                info = normalized(tarfile.TarInfo(name))
                info.size, info.mode = content.stat().st_size, 0o644
                with content.open("rb") as stream:
                    tar.addfile(info, stream)
    return manifest_digest


@dataclass(frozen=True)
class StoredImage:
    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]


def _archive_json(archive: tarfile.TarFile, name: str) -> Any:
    member = archive.extractfile(name)
    if member is None:
        raise BuildError(f"{archive.name!s}: {name} is not a file")
    return json.load(member)


def read_oci_archive(path: Path) -> StoredImage:
    with tarfile.open(path) as archive:
        descriptor = _archive_json(archive, "index.json")["manifests"][0]
        manifest = _archive_json(archive, "blobs/" + descriptor["digest"].replace(":", "/", 1))
        config = _archive_json(archive, "blobs/" + manifest["config"]["digest"].replace(":", "/", 1))
    return StoredImage(descriptor["digest"], manifest, config)


def extract_layers(path: Path, stored: StoredImage, blob_dir: Path) -> list[Layer]:
    """The image's layer blobs, copied out of its archive into blob_dir."""
    layers = []
    with tarfile.open(path) as archive:
        for descriptor, diff_id in zip(stored.manifest["layers"], stored.config["rootfs"]["diff_ids"], strict=True):
            target = blob_dir / descriptor["digest"].split(":", 1)[1]
            source = archive.extractfile("blobs/" + descriptor["digest"].replace(":", "/", 1))
            if source is None:
                raise BuildError(f"{path}: layer {descriptor['digest']} is missing")
            with target.open("wb") as out:
                shutil.copyfileobj(source, out)
            layers.append(Layer(descriptor["digest"], descriptor["size"], diff_id, target))
    return layers


# --- building --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuiltImage:
    name: str
    reference: str
    key: str
    archive: Path
    packages: frozenset[str]  # every Debian package in the image, the parent's included
    manifest_digest: str
    compressed_size: int  # bytes of all gzip layers
    status: str  # "built" or "cached"


def build_image(recipe: Recipe, parent: BuiltImage | None, *, tag: str, cache: Path, out_dir: Path,
                repo_root: Path = REPO_ROOT) -> BuiltImage:
    if (recipe.parent is None) != (parent is None) or (parent is not None and parent.name != recipe.parent):
        raise BuildError(f"{recipe.name}: built without its parent {recipe.parent}")
    provided = parent.packages if parent else frozenset()
    debs = resolve_debs(recipe.debs, provided, cache / "debs" / "resolved")
    key = content_key(recipe_text=recipe.text, inputs=key_inputs(recipe, repo_root),
                      deb_files=[deb.file_name for deb in debs], parent_key=parent.key if parent else None, tag=tag)
    archive = out_dir / f"{recipe.name}-{key[:16]}.tar"
    status = "cached"
    if not archive.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        (cache / "tmp").mkdir(parents=True, exist_ok=True)
        deb_paths = download_debs(debs, cache / "debs")
        with tempfile.TemporaryDirectory(dir=cache / "tmp", prefix=f"{recipe.name}-") as work:
            rootfs, blobs = Path(work, "rootfs"), Path(work, "blobs")
            rootfs.mkdir(mode=0o755)
            blobs.mkdir()
            assemble_rootfs(recipe, deb_paths, rootfs, repo_root)
            own_layer = write_layer(rootfs, Path(work, "layer.tar.gz"))
            parent_config, layers = None, [own_layer]
            if parent:
                stored_parent = read_oci_archive(parent.archive)
                parent_config = stored_parent.config
                layers = [*extract_layers(parent.archive, stored_parent, blobs), own_layer]
            history = f"hack/images/build.py {recipe.name} {key[:16]}: {len(debs)} debs, {len(recipe.files)} files"
            config = image_config(recipe, parent_config, layers, history)
            partial = Path(work, "image.tar")
            with partial.open("wb") as out:
                write_oci_archive(out, reference=image_reference(recipe.name, tag), config=config, layers=layers)
            os.replace(partial, archive)
        status = "built"
    stored = read_oci_archive(archive)
    return BuiltImage(recipe.name, image_reference(recipe.name, tag), key, archive,
                      provided | {deb.package for deb in debs}, stored.manifest_digest,
                      sum(layer["size"] for layer in stored.manifest["layers"]), status)


# --- containerd ------------------------------------------------------------------------------------------------

def containerd_digest(ctr: str, address: str, reference: str) -> str | None:
    """The manifest digest containerd's k8s.io namespace holds under `reference`, if any."""
    listing = _capture([ctr, "-a", address, "-n", CONTAINERD_NAMESPACE, "images", "ls"])
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0] == reference:
            return fields[2]
    return None


def import_image(ctr: str, address: str, image: BuiltImage) -> str:
    """Imports the archive unless containerd already has the same manifest under its reference."""
    if containerd_digest(ctr, address, image.reference) == image.manifest_digest:
        return "in containerd"
    repository = image.reference.rsplit(":", 1)[0]
    subprocess.run([ctr, "-a", address, "-n", CONTAINERD_NAMESPACE, "images", "import", "--base-name", repository,
                    str(image.archive)], check=True, stdout=sys.stderr)
    if containerd_digest(ctr, address, image.reference) != image.manifest_digest:
        raise BuildError(f"ctr imported {image.archive} but containerd has no {image.reference} at "
                         f"{image.manifest_digest}")
    return "imported"


# --- command line ----------------------------------------------------------------------------------------------

def default_tag(repo_root: Path = REPO_ROOT) -> str:
    version_file = repo_root / "VERSION"
    return version_file.read_text().strip() if version_file.is_file() else DEFAULT_TAG


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """The project's cache folder, by the rule hack/localcluster/lib.sh states for the shell scripts:
    ${KUBELESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-kubeless}, an empty variable counting as unset.

    This is the Python side's one statement of it; tests/unit/test_image_builder.py checks that the two agree.
    """
    if explicit := environ.get("KUBELESS_CACHE"):
        return Path(explicit)
    home = environ["HOME"] if "HOME" in environ else str(Path.home())
    return Path(environ.get("XDG_CACHE_HOME") or f"{home}/.cache", "kubectl-kubeless")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build OCI image archives from image.toml recipes.")
    parser.add_argument("recipe_dirs", nargs="*", type=Path, metavar="RECIPE_DIR")
    parser.add_argument("--all", action="store_true",
                        help="every recipe in the repository (not under .cluster/, dist/ or .git/)")
    parser.add_argument("--tag", help="image tag (default: the repo's VERSION file, else 0.1.0)")
    parser.add_argument("--out", type=Path, help="archive folder (default: $KUBELESS_CACHE/images)")
    parser.add_argument("--import", dest="import_images", action="store_true",
                        help="import the images into containerd's k8s.io namespace")
    parser.add_argument("--address", default="/run/containerd/containerd.sock", help="containerd socket")
    parser.add_argument("--ctr", default="ctr", help="path of containerd's ctr")
    parser.add_argument("--print-archives", action="store_true",
                        help="print only each archive's path (for `kind load image-archive`)")
    args = parser.parse_args(argv)
    if args.all and args.recipe_dirs:
        parser.error("--all builds every recipe: give it no RECIPE_DIR")
    if not args.all and not args.recipe_dirs:
        parser.error("give RECIPE_DIRs, or --all for every recipe of the repository")
    if args.tag == "latest":
        parser.error("the tag latest would make kubelet pull on every start; give a version")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.umask(0o022)  # folders and files that build steps create get the same modes on every machine
    tag = args.tag or default_tag()
    cache = cache_root()
    out_dir = args.out or cache / "images"
    built: dict[str, BuiltImage] = {}
    try:
        folders = find_recipes() if args.all else args.recipe_dirs
        for recipe in build_order([load_recipe(folder) for folder in folders], [IMAGES_DIR]):
            started = time.monotonic()
            image = build_image(recipe, built.get(recipe.parent) if recipe.parent else None,
                                tag=tag, cache=cache, out_dir=out_dir)
            built[recipe.name] = image
            status = image.status
            if args.import_images:
                status += ", " + import_image(args.ctr, args.address, image)
            if args.print_archives:
                print(image.archive, flush=True)
                continue
            print(f"{image.name:<12} {image.reference:<40} {image.key[:16]} {image.compressed_size / 1e6:7.1f} MB "
                  f"{time.monotonic() - started:6.1f} s  {status}", flush=True)
    except (BuildError, OSError) as error:
        print(f"build.py: error: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"build.py: error: {' '.join(map(str, error.cmd))} exited with {error.returncode}"
              f"{': ' + error.stderr.strip() if error.stderr else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
