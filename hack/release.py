"""The release files: the plugin's archive, its checksum, and its krew manifest.

    python hack/release.py archive        dist/kubectl-kubeless_<version>_any.tar.gz and .sha256 (needs make plugin)
    python hack/release.py krew-manifest  krew-manifest.yaml at the repository root, for that archive
    python hack/release.py krew-manifest --archive A --output M      the manifest of another archive, elsewhere

The plugin is a zipapp of pure Python (hack/build-plugin.sh), so one archive serves every OS and architecture; the
krew manifest names it for each platform krew knows the plugin on (linux and darwin, amd64 and arm64). The archive
holds the plugin as `kubectl-kubeless`, the `kubectl_complete-kubeless` completion helper and the LICENSE, and is
reproducible: the same plugin gives the same bytes (sorted members, fixed dates and owners, no name or date in
the gzip header), so the sha256 in the committed manifest is that of the archive `make release` builds.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
# Where releases are published: the archive is <RELEASES>/download/v<version>/<archive name>.
HOMEPAGE = "https://github.com/kubeless/kubectl-kubeless"
RELEASES = f"{HOMEPAGE}/releases"
PLATFORMS = [(os_, arch) for os_ in ("linux", "darwin") for arch in ("amd64", "arm64")]
MEMBERS = [  # (path in the repository, name in the archive, mode)
    ("dist/kubectl-kubeless", "kubectl-kubeless", 0o755),
    ("hack/kubectl_complete-kubeless", "kubectl_complete-kubeless", 0o755),
    ("LICENSE", "LICENSE", 0o644),
]
MTIME = 315532800  # 1980-01-01, as the zipapp's own entries

SHORT_DESCRIPTION = "Deploy, call and watch functions (Kubeless FaaS)"
DESCRIPTION = """\
Kubeless is a functions-as-a-service framework native to Kubernetes: you give it
the code of a function, it runs it in a pod behind a service, and you call it.
This plugin installs the server side (the Function CRD and its controller) and
manages functions: deploy code from a file or a URL, update it, list, describe,
call them through the API server, and read their logs.
"""
CAVEATS = """\
This plugin is a Python program: it needs python3 (3.10 or later) on PATH.

The server side (CRDs and the controller) must be on the cluster first:
  kubectl kubeless install --wait

Then:
  kubectl kubeless function deploy hello --runtime python3.11 \\
      --handler hello.handler --from-file hello.py --wait
  kubectl kubeless function call hello

For `kubectl kubeless <TAB>` (kubectl 1.26 or later, with kubectl's shell
completion loaded), put the completion helper on PATH:
  ln -sf "$(dirname "$(readlink -f "$(command -v kubectl-kubeless)")")/kubectl_complete-kubeless" "${KREW_ROOT:-$HOME/.krew}/bin/"
"""


def version() -> str:
    return (REPO / "VERSION").read_text().strip()


def archive_name(ver: str) -> str:
    return f"kubectl-kubeless_{ver}_any.tar.gz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_archive(ver: str) -> Path:
    """dist/<archive> and dist/<archive>.sha256 (in `sha256sum -c` form)."""
    for source, _, _ in MEMBERS:
        if not (REPO / source).is_file():
            sys.exit(f"error: {source} is missing (make plugin builds dist/kubectl-kubeless)")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for source, name, mode in sorted(MEMBERS, key=lambda m: m[1]):
            data = (REPO / source).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    path = DIST / archive_name(ver)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(tar_bytes.getvalue())
    (DIST / f"{path.name}.sha256").write_text(f"{sha256(path)}  {path.name}\n")
    return path


def manifest(ver: str, digest: str) -> str:
    """The krew Plugin manifest (apiVersion krew.googlecontainertools.github.com/v1alpha2) of one release."""
    import yaml  # the project's virtualenv has PyYAML

    class Literal(str):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        Literal, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|"))
    uri = f"{RELEASES}/download/v{ver}/{archive_name(ver)}"
    platforms = [{
        "selector": {"matchLabels": {"os": os_, "arch": arch}},
        "uri": uri, "sha256": digest, "bin": "kubectl-kubeless",
        "files": [{"from": name, "to": "."} for _, name, _ in MEMBERS],
    } for os_, arch in PLATFORMS]
    document = {
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2", "kind": "Plugin",
        "metadata": {"name": "kubeless"},
        "spec": {"version": f"v{ver}", "homepage": HOMEPAGE, "shortDescription": SHORT_DESCRIPTION,
                 "description": Literal(DESCRIPTION), "caveats": Literal(CAVEATS), "platforms": platforms},
    }
    return ("# Generated by `make krew-manifest` (hack/release.py) for the archive `make release` builds; do not "
            "edit.\n" + yaml.dump(document, Dumper=Dumper, sort_keys=False, width=1 << 16))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("archive", "krew-manifest"))
    parser.add_argument("--archive", type=Path, help="the archive the manifest is for (default: this version's)")
    parser.add_argument("--output", type=Path, default=REPO / "krew-manifest.yaml")
    args = parser.parse_args(argv)
    ver = version()
    if args.what == "archive":
        path = build_archive(ver)
        print(f"built {path.relative_to(REPO)} (sha256 {sha256(path)})", file=sys.stderr)
        return 0
    archive = args.archive or DIST / archive_name(ver)
    if not archive.is_file():
        sys.exit(f"error: {archive} is missing (make release builds it)")
    args.output.write_text(manifest(ver, sha256(archive)))
    print(f"wrote {args.output} for {archive.name} (sha256 {sha256(archive)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
