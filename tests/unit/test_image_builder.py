"""Unit tests of hack/images/build.py's pure parts: recipes, dependency resolution, content keys, layers and OCI
archives. Nothing here calls apt or containerd; root filesystems are tiny folders made in tmp_path."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from scripts import REPO, load_script

BUILD_PY = REPO / "hack" / "images" / "build.py"
LIB_SH = REPO / "hack" / "localcluster" / "lib.sh"


build = load_script("kubeless_image_builder", BUILD_PY)

APT_DEPENDS_RECURSE = """\
busybox-static
ca-certificates
  Depends: openssl
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
libc6
  Depends: libgcc-s1
openssl
  Depends: libc6
  Depends: libssl3
debconf
cdebconf
  Depends: libc6
  Depends: libnewt0.52
  Depends: debconf
libgcc-s1
  Depends: gcc-12-base
  Depends: libc6
libssl3
  Depends: libc6
libnewt0.52
  Depends: libc6
gcc-12-base
<debconf-2.0>
"""

APT_SHOW = """\
Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 1956
Architecture: amd64
Description: Standalone rescue shell with tons of builtin utilities
 BusyBox combines tiny versions of many common UNIX utilities: a line that
 looks like: Version: 9

Package: ca-certificates
Version: 20250419~deb12u2
Architecture: all
"""

FULL_RECIPE = """\
name = "python"
from = "base"
debs = ["python3.11-minimal"]
files = [
  { src = "kubeless_runtime.py", dst = "/kubeless_runtime.py", mode = "0644" },
  { src = "//controller/kubeless_controller", dst = "/app/kubeless_controller" },
]
run = [["gcc", "-o", "{rootfs}/pause", "{recipe}/pause.c"]]
symlinks = { "/bin/sh" = "busybox" }
user = "1000"
workdir = "/"
env = { PYTHONUNBUFFERED = "1", LANG = "C.UTF-8" }
cmd = ["/usr/bin/python3", "/kubeless_runtime.py"]
entrypoint = []
"""


def write(path: Path, text: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


def make_recipe(folder: Path, text: str) -> object:
    write(folder / "image.toml", text)
    return build.load_recipe(folder)


def make_tiny_rootfs(root: Path) -> Path:
    """A rootfs with a folder, files of several modes, a hardlink, symlinks and a fifo."""
    write(root / "etc" / "hostname", "tiny\n")
    write(root / "usr" / "bin" / "tool", b"#!/bin/sh\necho tool\n", 0o755)
    write(root / "usr" / "bin" / "setuid-tool", b"\x7fELF", 0o4755)
    os.link(root / "usr" / "bin" / "tool", root / "usr" / "bin" / "tool-alias")
    (root / "bin").symlink_to("usr/bin")
    (root / "usr" / "bin" / "sh").symlink_to("tool")
    (root / "var" / "empty").mkdir(parents=True)
    os.mkfifo(root / "var" / "fifo")
    return root


def sha256_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def archive_files(archive_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}


def build_tiny_archive(root: Path, tmp: Path, reference: str = "localhost/kubeless/tiny:1.2.3") -> bytes:
    layer = build.write_layer(root, tmp / "layer.tar.gz")
    recipe = build.parse_recipe('name = "tiny"\ncmd = ["/usr/bin/tool"]\n', tmp)
    config = build.image_config(recipe, None, [layer], "tiny")
    out = io.BytesIO()
    build.write_oci_archive(out, reference=reference, config=config, layers=[layer])
    return out.getvalue()


# --- recipes ---------------------------------------------------------------------------------------------------

def test_parse_recipe_reads_every_key(tmp_path: Path) -> None:
    recipe = build.parse_recipe(FULL_RECIPE, tmp_path)
    assert recipe.name == "python"
    assert recipe.parent == "base"
    assert recipe.debs == ("python3.11-minimal",)
    assert recipe.files == (build.FileCopy("kubeless_runtime.py", "/kubeless_runtime.py", 0o644),
                            build.FileCopy("//controller/kubeless_controller", "/app/kubeless_controller", None))
    assert recipe.run == (("gcc", "-o", "{rootfs}/pause", "{recipe}/pause.c"),)
    assert recipe.symlinks == (("/bin/sh", "busybox"),)
    assert (recipe.user, recipe.workdir) == ("1000", "/")
    assert recipe.env == (("PYTHONUNBUFFERED", "1"), ("LANG", "C.UTF-8"))
    assert recipe.cmd == ("/usr/bin/python3", "/kubeless_runtime.py")
    assert recipe.entrypoint == ()
    assert recipe.text == FULL_RECIPE


def test_parse_recipe_defaults(tmp_path: Path) -> None:
    recipe = build.parse_recipe('name = "pause"\n', tmp_path)
    assert (recipe.parent, recipe.debs, recipe.files, recipe.run, recipe.symlinks, recipe.env) == (
        None, (), (), (), (), ())
    assert (recipe.user, recipe.workdir, recipe.cmd, recipe.entrypoint) == (None, None, None, None)


@pytest.mark.parametrize("text, complaint", [
    ('name = "x"\nimage = "y"\n', "unknown keys"),
    ('debs = ["a"]\n', "name must match"),
    ('name = "Bad Name"\n', "name must match"),
    ('name = "x"\ndebs = "curl"\n', "list of strings"),
    ('name = "x"\nfiles = [{ src = "a" }]\n', "src and dst"),
    ('name = "x"\nfiles = [{ src = 1, dst = "/a" }]\n', "src and dst"),
    ('name = "x"\nfiles = [{ src = "a", dst = "relative" }]\n', "must be absolute"),
    ('name = "x"\nfiles = [{ src = "a", dst = "/a", mode = "rw" }]\n', "octal string"),
    ('name = "x"\nenv = { A = 1 }\n', "table of strings"),
    ('name = "x"\nrun = ["gcc"]\n', "list of strings"),
    ('name = "x"\nuser = 1000\n', "user must be a string"),
    ('name = [\n', "image.toml"),
])
def test_parse_recipe_rejects_mistakes(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(build.BuildError, match=complaint):
        build.parse_recipe(text, tmp_path)


def test_the_project_recipes_parse() -> None:
    folders = {"base": BUILD_PY.parent / "base", "pause": BUILD_PY.parent / "pause",
               "provision": REPO / "runtimes" / "provision"}
    recipes = {name: build.load_recipe(folder) for name, folder in folders.items()}
    assert {name: recipe.name for name, recipe in recipes.items()} == {
        "base": "base", "pause": "pause", "provision": "provision"}
    assert recipes["provision"].parent == "base"
    assert recipes["pause"].parent is None
    assert "tar" in recipes["provision"].debs
    assert build.run_inputs(recipes["pause"]) == [BUILD_PY.parent / "pause" / "pause.c"]


def test_find_recipes_skips_the_cluster_state_build_outputs_and_git(tmp_path: Path) -> None:
    for folder in ("hack/images/base", "runtimes/go", "runtimes/go/compile", "controller"):
        write(tmp_path / folder / "image.toml", 'name = "x"\n')
    for folder in (".cluster/containerd/root/some-image", "dist/unpacked", ".git/objects"):
        write(tmp_path / folder / "image.toml", 'name = "x"\n')
    write(tmp_path / "runtimes" / "README.md", "no recipe here\n")
    assert build.find_recipes(tmp_path) == [tmp_path / folder for folder in (
        "controller", "hack/images/base", "runtimes/go", "runtimes/go/compile")]


def test_find_recipes_finds_the_project_images() -> None:
    names = {build.load_recipe(folder).name for folder in build.find_recipes()}
    assert {"base", "pause", "provision", "controller", "python", "nodejs", "go"} <= names


def test_all_and_recipe_dirs_exclude_each_other() -> None:
    assert build.parse_args(["--all"]).all
    assert build.parse_args(["hack/images/base"]).recipe_dirs == [Path("hack/images/base")]
    for argv in ([], ["--all", "hack/images/base"]):
        with pytest.raises(SystemExit):
            build.parse_args(argv)


@pytest.mark.parametrize("environ", [
    {"HOME": "/home/u"},
    {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"},
    {"HOME": "/home/u", "XDG_CACHE_HOME": ""},
    {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "KUBELESS_CACHE": "/explicit"},
    {"HOME": "/home/u", "KUBELESS_CACHE": ""},
    {"HOME": "/home/u", "KUBELESS_CACHE": "relative/cache"},
])
def test_cache_root_agrees_with_the_shell_scripts(environ: dict[str, str]) -> None:
    shell = subprocess.run(["bash", "-c", 'source "$1" && printf %s "$KUBELESS_CACHE"', "-", str(LIB_SH)],
                           env={"PATH": os.environ["PATH"], **environ}, check=True, capture_output=True, text=True)
    assert build.cache_root(environ) == Path(shell.stdout)


def test_build_order_puts_parents_first_and_finds_them_in_search_dirs(tmp_path: Path) -> None:
    make_recipe(tmp_path / "images" / "base", 'name = "base"\n')
    make_recipe(tmp_path / "images" / "other", 'name = "other"\n')
    middle = make_recipe(tmp_path / "runtimes" / "middle", 'name = "middle"\nfrom = "base"\n')
    leaf = make_recipe(tmp_path / "runtimes" / "leaf", 'name = "leaf"\nfrom = "middle"\n')
    ordered = build.build_order([leaf, middle], [tmp_path / "images"])
    assert [recipe.name for recipe in ordered] == ["base", "middle", "leaf"]


def test_build_order_reports_a_missing_parent_and_a_cycle(tmp_path: Path) -> None:
    orphan = make_recipe(tmp_path / "orphan", 'name = "orphan"\nfrom = "nowhere"\n')
    with pytest.raises(build.BuildError, match="no recipe named nowhere"):
        build.build_order([orphan], [tmp_path / "images"])
    first = make_recipe(tmp_path / "a", 'name = "a"\nfrom = "b"\n')
    second = make_recipe(tmp_path / "b", 'name = "b"\nfrom = "a"\n')
    with pytest.raises(build.BuildError, match="cycle"):
        build.build_order([first, second], [])


# --- Debian packages -------------------------------------------------------------------------------------------

def test_parse_apt_depends_groups_alternatives_and_expands_virtual_packages() -> None:
    graph = build.parse_apt_depends(APT_DEPENDS_RECURSE)
    assert graph["ca-certificates"] == [("openssl",), ("debconf", "cdebconf", "debconf")]
    assert graph["libgcc-s1"] == [("gcc-12-base",), ("libc6",)]
    assert graph["busybox-static"] == []
    assert graph["<debconf-2.0>"] == []


def test_dependency_closure_follows_first_alternatives_and_skips_exclusions() -> None:
    graph = build.parse_apt_depends(APT_DEPENDS_RECURSE)
    closure = build.dependency_closure(["busybox-static", "ca-certificates", "libc6"], graph, frozenset(),
                                       build.EXCLUDED_DEPENDENCIES)
    assert closure == ["busybox-static", "ca-certificates", "gcc-12-base", "libc6", "libgcc-s1", "libssl3",
                       "openssl"]


def test_dependency_closure_leaves_out_what_the_parent_has_but_keeps_listed_exclusions() -> None:
    graph = build.parse_apt_depends(APT_DEPENDS_RECURSE)
    closure = build.dependency_closure(["openssl", "libc6", "debconf"], graph, frozenset({"libc6", "libgcc-s1"}),
                                       build.EXCLUDED_DEPENDENCIES)
    assert closure == ["debconf", "libssl3", "openssl"]


def test_parse_apt_show_names_files_like_apt_get_download() -> None:
    debs = build.parse_apt_show(APT_SHOW)
    assert debs["busybox-static"].file_name == "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
    assert debs["ca-certificates"].file_name == "ca-certificates_20250419~deb12u2_all.deb"
    assert set(debs) == {"busybox-static", "ca-certificates"}


# --- content key -----------------------------------------------------------------------------------------------

KEY_ARGS = dict(recipe_text='name = "x"\n', inputs=[("file a/ x=False", b"a"), ("run pause.c/", b"int main;")],
                deb_files=["libc6_2.36_amd64.deb", "busybox_1%3a1.35_amd64.deb"], parent_key="p" * 64, tag="0.1.0")


def test_content_key_is_stable() -> None:
    key = build.content_key(**KEY_ARGS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert build.content_key(**KEY_ARGS) == key
    reordered = dict(KEY_ARGS, inputs=KEY_ARGS["inputs"][::-1], deb_files=KEY_ARGS["deb_files"][::-1])
    assert build.content_key(**reordered) == key


@pytest.mark.parametrize("change", [
    {"recipe_text": 'name = "y"\n'},
    {"inputs": [("file a/ x=False", b"b"), ("run pause.c/", b"int main;")]},
    {"inputs": [("file b/ x=False", b"a"), ("run pause.c/", b"int main;")]},
    {"inputs": [("file a/ x=True", b"a"), ("run pause.c/", b"int main;")]},
    {"inputs": [("file a/ x=False", b"a")]},
    {"deb_files": ["libc6_2.37_amd64.deb", "busybox_1%3a1.35_amd64.deb"]},
    {"parent_key": "q" * 64},
    {"parent_key": None},
    {"tag": "0.2.0"},
])
def test_content_key_changes_with_every_input(change: dict) -> None:
    assert build.content_key(**dict(KEY_ARGS, **change)) != build.content_key(**KEY_ARGS)


def test_content_key_cannot_be_fooled_by_moving_bytes_between_fields() -> None:
    first = dict(KEY_ARGS, inputs=[("ab", b"c")])
    second = dict(KEY_ARGS, inputs=[("a", b"bc")])
    assert build.content_key(**first) != build.content_key(**second)


def test_key_inputs_read_files_folders_repo_paths_and_run_sources(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "controller" / "pkg" / "__init__.py", "")
    write(repo / "controller" / "pkg" / "main.py", "print(1)\n")
    write(repo / "controller" / "pkg" / "__pycache__" / "main.cpython-311.pyc", b"junk")
    write(repo / "controller" / "pkg" / "stale.pyc", b"junk")
    folder = repo / "runtimes" / "python"
    write(folder / "runtime.py", "#!/usr/bin/env python3\n", 0o755)
    write(folder / "helper.c", "int main(void) { return 0; }\n")
    recipe = make_recipe(folder, """\
name = "python"
files = [{ src = "runtime.py", dst = "/runtime.py" }, { src = "//controller/pkg", dst = "/app/pkg" }]
run = [["sh", "-c", "cc -o {rootfs}/helper {recipe}/helper.c && echo {recipe}/not-there"]]
""")
    inputs = build.key_inputs(recipe, repo)
    assert [label for label, _ in inputs] == [
        "file runtime.py/ x=True", "file //controller/pkg/__init__.py x=False",
        "file //controller/pkg/main.py x=False", "run helper.c/"]
    assert dict(inputs)["file //controller/pkg/main.py x=False"] == b"print(1)\n"


# --- root filesystem -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, relative", [
    ("/bin/sh", "usr/bin/sh"), ("/lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"),
    ("/sbin", "usr/sbin"), ("/etc/passwd", "etc/passwd"), ("/app/./x/../y", "app/y"), ("/binary", "binary"),
])
def test_image_path_maps_legacy_folders_into_usr(path: str, relative: str) -> None:
    assert build.image_path(path) == relative


@pytest.mark.parametrize("path", ["relative", "/", "/bin/..", "../etc"])
def test_image_path_rejects_paths_outside_the_image(path: str) -> None:
    with pytest.raises(build.BuildError):
        build.image_path(path)


def test_merge_usr_moves_legacy_folders_and_leaves_symlinks(tmp_path: Path) -> None:
    write(tmp_path / "bin" / "busybox", b"bb", 0o755)
    write(tmp_path / "lib" / "x86_64-linux-gnu" / "libc.so.6", b"libc")
    write(tmp_path / "usr" / "lib" / "x86_64-linux-gnu" / "libssl.so.3", b"ssl")
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib64" / "ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    build.merge_usr(tmp_path)
    build.merge_usr(tmp_path)  # idempotent
    for name in ("bin", "lib", "lib64"):
        assert os.readlink(tmp_path / name) == f"usr/{name}"
    assert not (tmp_path / "sbin").exists()
    assert (tmp_path / "usr" / "bin" / "busybox").read_bytes() == b"bb"
    assert sorted(p.name for p in (tmp_path / "usr" / "lib" / "x86_64-linux-gnu").iterdir()) == [
        "libc.so.6", "libssl.so.3"]
    assert os.readlink(tmp_path / "usr" / "lib64" / "ld-linux-x86-64.so.2").startswith("/lib/")


def test_prepare_target_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ssl").symlink_to("/etc/ssl")
    with pytest.raises(build.BuildError, match="symlink"):
        build.prepare_target(tmp_path, "etc/ssl/certs/extra.pem")


# --- layers and archives ---------------------------------------------------------------------------------------

def test_write_layer_keeps_types_and_modes_and_normalizes_the_rest(tmp_path: Path) -> None:
    root = make_tiny_rootfs(tmp_path / "rootfs")
    layer = build.write_layer(root, tmp_path / "layer.tar.gz")
    blob = layer.path.read_bytes()
    assert layer.digest == sha256_of(blob) and layer.size == len(blob)
    uncompressed = gzip.decompress(blob)
    assert layer.diff_id == sha256_of(uncompressed)
    with tarfile.open(fileobj=io.BytesIO(uncompressed)) as tar:
        members = tar.getmembers()
        names = [member.name for member in members]
        assert names == sorted(names)
        assert "var/fifo" not in names and "." not in names
        by_name = {member.name: member for member in members}
        assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"
        assert by_name["usr/bin/sh"].issym() and by_name["usr/bin/sh"].linkname == "tool"
        assert by_name["usr/bin/tool"].isfile() and by_name["usr/bin/tool"].mode == 0o755
        assert by_name["usr/bin/tool-alias"].islnk() and by_name["usr/bin/tool-alias"].linkname == "usr/bin/tool"
        assert by_name["usr/bin/setuid-tool"].mode == 0o4755
        assert by_name["etc/hostname"].mode == 0o644
        assert by_name["var/empty"].isdir()
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        assert tar.extractfile("usr/bin/tool").read() == b"#!/bin/sh\necho tool\n"
    assert blob[4:8] == b"\0\0\0\0"  # gzip header mtime


def test_oci_archive_layout(tmp_path: Path) -> None:
    archive = build_tiny_archive(make_tiny_rootfs(tmp_path / "rootfs"), tmp_path)
    files = archive_files(archive)
    for name, content in files.items():
        if name.startswith("blobs/sha256/"):
            assert sha256_of(content) == "sha256:" + name.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2 and index["mediaType"] == build.MEDIA_INDEX
    [descriptor] = index["manifests"]
    assert descriptor["annotations"] == {"io.containerd.image.name": "localhost/kubeless/tiny:1.2.3",
                                         "org.opencontainers.image.ref.name": "1.2.3"}
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest_bytes = files["blobs/" + descriptor["digest"].replace(":", "/")]
    assert descriptor["size"] == len(manifest_bytes) and descriptor["mediaType"] == build.MEDIA_MANIFEST
    manifest = json.loads(manifest_bytes)
    config_bytes = files["blobs/" + manifest["config"]["digest"].replace(":", "/")]
    assert manifest["config"]["size"] == len(config_bytes)
    [layer] = manifest["layers"]
    layer_bytes = files["blobs/" + layer["digest"].replace(":", "/")]
    assert layer["size"] == len(layer_bytes) and layer["mediaType"] == build.MEDIA_LAYER
    config = json.loads(config_bytes)
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256_of(gzip.decompress(layer_bytes))]}
    assert config["config"]["Cmd"] == ["/usr/bin/tool"]
    assert config["config"]["Env"] == [f"PATH={build.DEFAULT_PATH}"]
    assert len(config["history"]) == 1
    assert json.loads(files["manifest.json"]) == [{
        "Config": "blobs/" + manifest["config"]["digest"].replace(":", "/"),
        "RepoTags": ["localhost/kubeless/tiny:1.2.3"],
        "Layers": ["blobs/" + layer["digest"].replace(":", "/")]}]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        assert names == sorted(names) and names[:2] == ["blobs", "blobs/sha256"]
        assert {(m.mtime, m.uid, m.gid) for m in tar.getmembers()} == {(0, 0, 0)}


def test_building_the_same_rootfs_twice_gives_identical_archives(tmp_path: Path) -> None:
    def archive_of(root: Path, out: str) -> bytes:
        (tmp_path / out).mkdir()
        return build_tiny_archive(root, tmp_path / out)

    first_root = make_tiny_rootfs(tmp_path / "first")
    first = archive_of(first_root, "first-out")
    os.utime(first_root / "etc" / "hostname", (1, 1))
    assert archive_of(first_root, "again-out") == first
    second_root = make_tiny_rootfs(tmp_path / "second")  # other inodes and mtimes, same content
    assert archive_of(second_root, "second-out") == first
    (second_root / "etc" / "hostname").write_text("changed\n")
    assert archive_of(second_root, "changed-out") != first


def test_image_config_inherits_from_the_parent_and_overrides(tmp_path: Path) -> None:
    parent_recipe = build.parse_recipe('name = "base"\nuser = "1000"\nworkdir = "/"\ncmd = ["/bin/sh"]\n'
                                       'env = { A = "1" }\n', tmp_path)
    base_layer = build.Layer("sha256:" + "1" * 64, 10, "sha256:" + "a" * 64, tmp_path / "one")
    parent = build.image_config(parent_recipe, None, [base_layer], "base")
    child_recipe = build.parse_recipe('name = "child"\nenv = { A = "2", B = "3" }\nentrypoint = ["/x"]\n',
                                      tmp_path)
    child_layer = build.Layer("sha256:" + "2" * 64, 20, "sha256:" + "b" * 64, tmp_path / "two")
    child = build.image_config(child_recipe, parent, [base_layer, child_layer], "child")
    assert child["config"] == {"Env": [f"PATH={build.DEFAULT_PATH}", "A=2", "B=3"], "User": "1000",
                               "WorkingDir": "/", "Cmd": ["/bin/sh"], "Entrypoint": ["/x"]}
    assert child["rootfs"]["diff_ids"] == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
    assert [entry["created_by"] for entry in child["history"]] == ["base", "child"]


# --- whole builds without apt ----------------------------------------------------------------------------------

def test_recipe_outside_hack_images_builds_on_base_with_repo_paths(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    cache = tmp_path / "cache"
    write(repo / "controller" / "kubeless_controller" / "__init__.py", "")
    write(repo / "controller" / "kubeless_controller" / "main.py", "print('controller')\n")
    write(repo / "controller" / "kubeless_controller" / "__pycache__" / "main.cpython-311.pyc", b"junk")
    make_recipe(repo / "hack" / "images" / "base", """\
name = "base"
files = [{ src = "motd", dst = "/etc/motd" }]
symlinks = { "/bin/sh" = "busybox" }
user = "1000"
workdir = "/"
env = { BASE = "yes" }
cmd = ["/bin/sh"]
""")
    write(repo / "hack" / "images" / "base" / "motd", "hello\n")
    folder = repo / "runtimes" / "python"
    write(folder / "kubeless_runtime.py", "print('runtime')\n")
    write(folder / "banner.txt", "banner\n")
    child = make_recipe(folder, """\
name = "python"
from = "base"
files = [
  { src = "kubeless_runtime.py", dst = "/kubeless_runtime.py", mode = "0644" },
  { src = "//controller/kubeless_controller", dst = "/app/kubeless_controller" },
]
run = [["sh", "-c", "cp {recipe}/banner.txt {rootfs}/banner && mkdir -p {rootfs}/bin && touch {rootfs}/bin/extra"]]
env = { PYTHONUNBUFFERED = "1" }
cmd = ["/usr/bin/python3", "/kubeless_runtime.py"]
""")

    def build_all(out_dir: Path) -> list:
        images: dict[str, object] = {}
        for recipe in build.build_order([child], [repo / "hack" / "images"]):
            parent = images.get(recipe.parent) if recipe.parent else None
            images[recipe.name] = build.build_image(recipe, parent, tag="0.3.0", cache=cache, out_dir=out_dir,
                                                    repo_root=repo)
        return list(images.values())

    base, python = build_all(tmp_path / "out")
    assert (base.status, python.status) == ("built", "built")
    assert python.reference == "localhost/kubeless/python:0.3.0"
    assert python.archive.name == f"python-{python.key[:16]}.tar"
    base_manifest = build.read_oci_archive(base.archive).manifest
    stored = build.read_oci_archive(python.archive)
    assert stored.manifest_digest == python.manifest_digest
    assert [layer["digest"] for layer in stored.manifest["layers"]][:1] == [
        layer["digest"] for layer in base_manifest["layers"]]
    assert python.compressed_size == sum(layer["size"] for layer in stored.manifest["layers"])
    assert stored.config["config"] == {"Env": [f"PATH={build.DEFAULT_PATH}", "BASE=yes", "PYTHONUNBUFFERED=1"],
                                       "User": "1000", "WorkingDir": "/",
                                       "Cmd": ["/usr/bin/python3", "/kubeless_runtime.py"]}

    files = archive_files(python.archive.read_bytes())
    own_layer = files["blobs/" + stored.manifest["layers"][1]["digest"].replace(":", "/")]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(own_layer))) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert tar.extractfile("app/kubeless_controller/main.py").read() == b"print('controller')\n"
        assert tar.extractfile("banner").read() == b"banner\n"
        assert tar.extractfile("etc/passwd").read().decode() == build.PASSWD
        assert tar.extractfile("etc/group").read().decode() == build.GROUP
    assert not any("__pycache__" in name for name in members)
    assert members["kubeless_runtime.py"].mode == 0o644
    assert members["app/kubeless_controller"].isdir() and members["app/kubeless_controller"].mode == 0o755
    assert members["tmp"].mode == 0o1777
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert "usr/bin/extra" in members and "etc/motd" not in members

    again = build_all(tmp_path / "out")
    assert [image.status for image in again] == ["cached", "cached"]
    assert [image.key for image in again] == [base.key, python.key]
    elsewhere = build_all(tmp_path / "elsewhere")
    assert elsewhere[1].archive.read_bytes() == python.archive.read_bytes()

    write(repo / "controller" / "kubeless_controller" / "main.py", "print('changed')\n")
    changed = build_all(tmp_path / "out")
    assert (changed[0].key, changed[0].status) == (base.key, "cached")
    assert changed[1].key != python.key and changed[1].status == "built"


def test_a_child_refuses_to_build_without_its_parent(tmp_path: Path) -> None:
    child = build.parse_recipe('name = "child"\nfrom = "base"\n', tmp_path)
    with pytest.raises(build.BuildError, match="without its parent"):
        build.build_image(child, None, tag="0.1.0", cache=tmp_path / "cache", out_dir=tmp_path / "out")


def test_default_tag_reads_version_file(tmp_path: Path) -> None:
    assert build.default_tag(tmp_path) == "0.1.0"
    write(tmp_path / "VERSION", "1.4.2\n")
    assert build.default_tag(tmp_path) == "1.4.2"


def test_latest_is_refused() -> None:
    with pytest.raises(SystemExit):
        build.parse_args(["--tag", "latest", "hack/images/base"])
