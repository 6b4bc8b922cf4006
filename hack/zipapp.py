"""Finishing and checking the built plugin (a shiv zipapp), for hack/build-plugin.sh and the tests.

    python hack/zipapp.py precompile ARCHIVE   adds the bytecode of the modules every command imports
    python hack/zipapp.py check ARCHIVE        fails if a compiled extension is inside; prints a summary

Why precompile: shiv leaves .pyc files out and extracts the sources to ~/.shiv on the first run; Python then writes
the bytecode beside them as it imports, unless PYTHONDONTWRITEBYTECODE is set (as on this project's machines),
and then every command compiles them again (~100 ms of its start-up). Its own --compile-pyc compiles the whole of
`kubernetes` at the first run instead, seconds that every user would wait once. So the archive carries the
bytecode of the few packages a command imports when the kubeconfig holds plain credentials, hash-checked (valid
whatever the extracted files' dates) and for the building interpreter's version; any other version compiles them
itself, as without.

Why check: one archive serves every OS and architecture only if nothing inside is compiled for one of them.
"""
from __future__ import annotations

import importlib.util
import json
import marshal
import os
import shutil
import sys
import zipfile
from collections import Counter

COMPILED = (".so", ".pyd", ".dylib", ".dll")
# What `version`, `--help` and the cluster commands import (kubectl_kubeless/kube.py reads static credentials
# itself, so `kubernetes` is imported only for exec plugins and the like).
PRECOMPILED = ("kubectl_kubeless", "kubeless_api", "yaml", "urllib3")


def pyc(source: bytes, filename: str) -> bytes:
    """A checked-hash .pyc (PEP 552): the interpreter compares it with the source's hash, not with file dates."""
    code = compile(source, filename, "exec", dont_inherit=True)
    flags = 0b11  # hash-based, checked
    return (importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little") + importlib.util.source_hash(source)
            + marshal.dumps(code))


def precompile(path: str) -> int:
    """Rewrite the archive with __pycache__ entries for PRECOMPILED; the same bytes for the same input."""
    tmp = path + ".precompile"
    added = 0
    with zipfile.ZipFile(path) as source, open(path, "rb") as raw:
        prefix = raw.read(source.infolist()[0].header_offset) if source.infolist() else b""
        with open(tmp, "wb") as out:
            out.write(prefix)  # the shebang line
            with zipfile.ZipFile(out, "w") as target:
                for info in source.infolist():
                    data = source.read(info)
                    target.writestr(info, data)
                    parts = info.filename.split("/")
                    if parts[0] == "site-packages" and len(parts) > 2 and parts[1] in PRECOMPILED \
                            and info.filename.endswith(".py"):
                        cached = importlib.util.cache_from_source(info.filename)
                        entry = zipfile.ZipInfo(cached, date_time=info.date_time)
                        entry.compress_type = info.compress_type
                        entry.external_attr = 0o644 << 16
                        target.writestr(entry, pyc(data, info.filename))
                        added += 1
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
    print(f"added the bytecode of {added} modules ({', '.join(PRECOMPILED)}) for Python "
          f"{sys.version_info.major}.{sys.version_info.minor}", file=sys.stderr)
    return 0


def compiled_members(path: str) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [name for name in archive.namelist() if name.endswith(COMPILED) or ".so." in name]


def distributions(path: str) -> list[str]:
    """`name-version` of every distribution inside, from their dist-info folders."""
    with zipfile.ZipFile(path) as archive:
        return sorted({name.split("/")[1][:-len(".dist-info")] for name in archive.namelist()
                       if name.startswith("site-packages/") and name.split("/")[1].endswith(".dist-info")})


def check(path: str) -> int:
    compiled = compiled_members(path)
    if compiled:
        print(f"error: {path} holds compiled extensions, so it would run on one platform only:", file=sys.stderr)
        for name in compiled:
            print(f"  {name}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(path) as archive:
        environment = json.loads(archive.read("environment.json"))
        count = Counter(name.endswith(".pyc") for name in archive.namelist())
    print(f"pure Python: {count[False]} files and {count[True]} .pyc, entry point {environment['entry_point']}; "
          f"{', '.join(distributions(path))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    commands = {"check": check, "precompile": precompile}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]](sys.argv[2]))
