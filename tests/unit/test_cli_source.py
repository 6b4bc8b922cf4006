"""Reading a function's code: content type, checksum and the ConfigMap size limit (Kubeless' rules)."""
from __future__ import annotations

import base64
import hashlib

import pytest

from kubeless_api import meta
from kubectl_kubeless import source
from kubectl_kubeless.errors import UserError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_utf8_text_is_stored_as_is(tmp_path):
    path = tmp_path / "hello.py"
    path.write_text("print('héllo')\n")
    code = source.read_code(str(path))
    assert code == source.Code("print('héllo')\n", "text", sha(path.read_bytes()))


def test_binary_is_base64_and_the_checksum_is_of_the_raw_bytes(tmp_path):
    data = bytes(range(256))
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    code = source.read_code(str(path))
    assert code.content_type == "base64"
    assert base64.b64decode(code.function) == data
    assert code.checksum == sha(data)


# the first bytes of each kind of archive, and nothing more: enough for the content check
ARCHIVES = {"f.zip": b"PK\x03\x04rest", "f.tar.gz": b"\x1f\x8b\x08rest", "f.tgz": b"\x1f\x8b\x08rest",
            "f.tar.bz2": b"BZh91AY", "f.tar.xz": b"\xfd7zXZ\x00rest"}


@pytest.mark.parametrize(("name", "kind"), [
    ("f.zip", "base64+zip"), ("f.tar.gz", "base64+compressedtar"), ("f.tgz", "base64+compressedtar"),
    ("f.tar.bz2", "base64+compressedtar"), ("f.tar.xz", "base64+compressedtar"), ("f.py", "text"),
])
def test_archives_get_a_suffix_and_are_always_base64(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(ARCHIVES.get(name, b"print(1)\n"))
    assert source.read_code(str(path)).content_type == kind


def test_a_url_is_stored_as_a_url_with_the_checksum_of_what_it_served():
    served = b"PK\x03\x04def handler(e, c):\n    return 1\n"
    fetched = []

    def fetch(url, flag):
        fetched.append((url, flag))
        return [served[:3], served[3:]]  # chunks, as a download yields them

    code = source.read_code("https://example.com/code/app.zip?token=x", fetch)
    assert code == source.Code("https://example.com/code/app.zip?token=x", "url+zip", sha(served))
    assert fetched == [("https://example.com/code/app.zip?token=x", "--from-file")]
    assert source.read_code("http://example.com/hello.py", fetch).content_type == "url"


def test_code_from_a_url_is_hashed_as_it_arrives_and_its_archive_checked_by_its_first_bytes():
    chunks = [b"P", b"K\x03", b"\x04" + b"x" * 10] + [b"y" * 1000] * 50
    code = source.read_code("https://example.com/app.zip", lambda url, flag: iter(chunks))
    assert code.checksum == sha(b"".join(chunks))
    with pytest.raises(UserError, match="the name says a zip archive"):
        source.read_code("https://example.com/app.zip", lambda url, flag: iter([b"not", b" a zip"]))


def test_dependencies_from_a_url_beyond_the_configmap_limit_are_refused_without_reading_on():
    served = []

    def endless(url, flag):
        while True:
            served.append(1)
            yield b"x" * 512 * 1024

    with pytest.raises(UserError, match="--dependencies"):
        source.read_deps("https://example.com/requirements.txt", endless)
    assert len(served) == 3, "the third half-MiB is over the limit: no fourth is read"


def test_dependencies_are_text_or_base64(tmp_path):
    text = tmp_path / "requirements.txt"
    text.write_text("requests==2.32.3\n")
    assert source.read_deps(str(text)) == "requests==2.32.3\n"
    binary = tmp_path / "deps.bin"
    binary.write_bytes(b"\xff\xfe")
    assert source.read_deps(str(binary)) == base64.b64encode(b"\xff\xfe").decode()


def test_a_missing_or_unreadable_file_names_the_flag(tmp_path):
    with pytest.raises(UserError, match=r"--from-file .*nope.py: No such file or directory"):
        source.read_code(str(tmp_path / "nope.py"))
    with pytest.raises(UserError, match="is a directory"):
        source.read_code(str(tmp_path))
    with pytest.raises(UserError, match="--dependencies"):
        source.read_deps(str(tmp_path / "requirements.txt"))


def test_code_over_the_configmap_limit_points_to_url_content(tmp_path):
    path = tmp_path / "big.py"
    path.write_text("#" * meta.CONFIGMAP_LIMIT)
    code = source.read_code(str(path))
    with pytest.raises(UserError) as refused:
        source.check_size(str(path), code, "x")
    assert "over the 1 MiB (1048576 bytes)" in str(refused.value)
    assert "--from-file https://" in str(refused.value)
    source.check_size(str(path), source.Code("x" * meta.CONFIGMAP_LIMIT, "text", ""), None)  # at the limit: fine


def test_code_and_deps_together_count():
    code = source.Code("x" * (meta.CONFIGMAP_LIMIT // 2), "text", "")
    with pytest.raises(UserError, match="--dependencies"):
        source.check_size("f.py", code, "y" * (meta.CONFIGMAP_LIMIT // 2 + 10))
