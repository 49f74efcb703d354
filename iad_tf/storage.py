"""The one storage layer: every user path is a local path or a URL (``s3://``, ``gs://``,
``memory://``, any fsspec scheme). CONVENTIONS rule 16.

* :func:`to_path` turns what a user typed into a path object: a local path stays a
  :class:`pathlib.Path`; a URL becomes a :class:`upath.UPath` over fsspec (the pathlib API:
  ``/``, ``name``, ``open``, ``iterdir``, ``glob``, ``is_file``, ...). A URL is never handed to
  ``pathlib`` (which turns ``s3://b`` into a local folder ``s3:/b``), and ``os.fspath`` of a
  remote path raises, so nothing can silently write a ``scheme:`` folder locally.
* A scheme whose file system is not installed is one line naming the extra
  (``pip install 'iad-tf[cloud]'``); a missing bucket or a refused request is one line naming
  the URL and the cause (:class:`StorageError`).
* Writes are atomic-ish: a file is written locally under a temporary name and then renamed
  (local) or uploaded in one request (object stores make an object visible only when its
  upload completes). Directory uploads put the commit marker (``manifest.json``) last.
* Code that needs a real local file (TensorFlow's record reader, LiteRT, SavedModel) works on
  a local copy: :func:`local_records` (shards checked against the manifest's sha256),
  :func:`local_copy`, and :func:`staged_dir` (a local working folder mirrored to a URL).

Emulators and other endpoints come from the clients' own environment variables
(``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``), never from code.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Union

from iad_tf.locks import LOCK_NAME

#: ``scheme://`` at the start of a URL (two letters at least: ``C:\\`` is a Windows drive).
_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+)://")
CLOUD_EXTRA = "pip install 'iad-tf[cloud]'"
#: scheme -> the package that implements it (for the one-line "not installed" error).
PACKAGE_FOR_SCHEME: dict[str, str] = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
MANIFEST = "manifest.json"
#: Where verified local copies of remote records live (``$IAD_TF_CACHE`` or ~/.cache/iad-tf).
CACHE_ENV = "IAD_TF_CACHE"

#: A local path or a URL path object (``upath.UPath``; typed loosely so this module imports
#: without the cloud extra).
AnyPath = Union[Path, Any]  # noqa: UP007 - the alias must work at runtime


class StorageError(OSError):
    """A storage operation that failed: ``str()`` is one line naming the URL and the cause."""


def scheme_of(value: str | os.PathLike[str]) -> str | None:
    """The URL scheme of ``value`` (``"s3"``), or ``None`` for a local path (and ``file://``)."""
    if _is_upath(value):
        proto = value.protocol  # type: ignore[union-attr]
        return None if proto in ("", "file", "local") else proto
    m = _SCHEME_RE.match(os.fspath(value) if isinstance(value, os.PathLike) else str(value))
    if m is None or m.group("scheme").lower() in ("file", "local"):
        return None
    return m.group("scheme").lower()


def is_url(value: str | os.PathLike[str]) -> bool:
    """True for a remote URL (any scheme but ``file``)."""
    return scheme_of(value) is not None


def _is_upath(value: object) -> bool:
    return type(value).__module__.startswith("upath")


def is_remote(path: object) -> bool:
    """True for a path object (or string) that lives in a remote store."""
    if _is_upath(path) or isinstance(path, str):
        return is_url(path)  # type: ignore[arg-type]
    return False


def to_path(value: str | os.PathLike[str]) -> AnyPath:
    """A local :class:`~pathlib.Path` (``~`` expanded, ``file://`` dropped) or, for a URL, a
    ``UPath``. Raises :class:`StorageError` (one line) for a scheme that is unknown or whose
    file system is not installed."""
    if _is_upath(value):
        return value if is_url(value) else Path(value.path)  # type: ignore[union-attr]
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    scheme = scheme_of(text)
    if scheme is None:
        return Path(re.sub(r"^(?i:file|local)://", "", text)).expanduser()
    _check_scheme(text, scheme)
    from upath import UPath

    return UPath(text)


def _check_scheme(url: str, scheme: str) -> None:
    try:
        import fsspec
        import upath  # noqa: F401
    except ImportError:
        raise StorageError(
            f"{url}: URLs need fsspec and universal-pathlib, which this install lacks: {CLOUD_EXTRA}"
        ) from None
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        pkg = PACKAGE_FOR_SCHEME.get(scheme, f"the {scheme} file system")
        raise StorageError(
            f"{url}: {scheme}:// needs {pkg}, which this install lacks: {CLOUD_EXTRA}"
        ) from None
    except ValueError:
        raise StorageError(f"{url}: unknown storage scheme {scheme}://") from None


def cause(exc: BaseException) -> str:
    """A short one-line cause of a storage exception (botocore/gcsfs/OS alike)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "response", {}) or {}
    code = code.get("Error", {}).get("Code") if isinstance(code, dict) else None
    if code == "NoSuchBucket" or "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return "no such bucket"
    if isinstance(exc, FileNotFoundError):
        return "no such file or bucket"
    if isinstance(exc, PermissionError):
        return f"permission denied ({text})"
    return text if len(text) < 200 else text[:197] + "..."


@contextlib.contextmanager
def errors(where: object) -> Iterator[None]:
    """Turn any storage exception inside the block into a one-line :class:`StorageError`
    naming ``where``."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise StorageError(f"{where}: {cause(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - botocore/google errors have no common base
        if type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "google", "gcsfs", "s3fs", "aiohttp"):
            raise StorageError(f"{where}: {cause(exc)}") from exc
        raise


def bucket_of(path: AnyPath) -> str | None:
    """``s3://bucket/a/b`` -> ``s3://bucket``; ``None`` for a local path."""
    if not is_remote(path):
        return None
    m = re.match(r"^([^:]+://[^/]*)", str(path))
    return m.group(1) if m else None


def check_bucket(path: AnyPath) -> None:
    """Raise a one-line :class:`StorageError` when the bucket of a URL is missing or refused."""
    root = bucket_of(path)
    if root is None or scheme_of(root) == "memory":
        return
    with errors(path):
        ok = to_path(root).exists()
    if not ok:
        raise StorageError(f"{path}: bucket {root} does not exist or is not reachable")


# ------------------------------------------------------------------------------- file access


def remove_tree(path: AnyPath) -> None:
    """Delete a folder and everything under it (local or URL); absent is fine."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with errors(path):
        if path.exists():
            path.fs.rm(path.path, recursive=True)


def open_file(path: AnyPath | str, mode: str = "rb") -> IO[Any]:
    """Open a local path or URL (a seekable file object; soundfile and numpy read from it)."""
    p = to_path(path) if isinstance(path, str) else path
    with errors(p):
        return p.open(mode)


@contextlib.contextmanager
def atomic_write(path: AnyPath) -> Iterator[Path]:
    """Yield a local temporary file to write; on success it is renamed to ``path`` (local) or
    uploaded to it in one request (a URL); on error it is removed. Parents are created."""
    if not is_remote(path):
        from iad_tf.fileio import atomic_path

        with atomic_path(path) as tmp:
            yield tmp
        return
    fd, name = tempfile.mkstemp(prefix=".iad-tf-", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        put_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def put_file(local: Path, dest: AnyPath) -> None:
    """Copy one local file to ``dest`` (local or URL) as a whole."""
    if not is_remote(dest):
        with atomic_write(Path(dest)) as tmp:
            shutil.copyfile(local, tmp)
        return
    with errors(dest):
        dest.fs.put_file(str(local), dest.path)


def get_file(src: AnyPath, local: Path) -> None:
    """Copy ``src`` (local or URL) to the local file ``local`` atomically."""
    with atomic_write(local) as tmp:
        if is_remote(src):
            with errors(src):
                src.fs.get_file(src.path, str(tmp))
        else:
            shutil.copyfile(src, tmp)


def _mirrored(name: str) -> bool:
    """Whether a file is copied between a folder and its mirror: not a temporary, and not
    an output lock (a lock belongs to its own store: iad_tf.locks, iad_tf.locks_remote)."""
    return not (name.endswith(".tmp") or name.startswith(LOCK_NAME))


def upload_tree(local: Path, dest: AnyPath, last: Sequence[str] = (MANIFEST,)) -> int:
    """Copy every file under ``local`` to ``dest``, the names in ``last`` after all others
    (the commit marker last). Returns the number of files."""
    files = sorted(p for p in local.rglob("*") if p.is_file() and _mirrored(p.name))
    files.sort(key=lambda p: p.name in last)
    for p in files:
        put_file(p, dest.joinpath(*p.relative_to(local).parts))
    return len(files)


def download_tree(src: AnyPath, local: Path) -> int:
    """Copy every file under ``src`` (a URL folder) into ``local``. Returns the count."""
    n = 0
    with errors(src):
        if not src.exists():
            return 0
        found = src.fs.find(src.path)
    for key in found:
        rel = key[len(src.path.rstrip("/")) + 1:] if key.startswith(src.path.rstrip("/")) else key
        if not rel or not _mirrored(rel.rsplit("/", 1)[-1]):
            continue
        get_file(src.joinpath(*rel.split("/")), local.joinpath(*rel.split("/")))
        n += 1
    return n


def signature(path: AnyPath) -> list[Any]:
    """What identifies a file's version: [path, size, version] where version is the store's
    ETag/generation/hash (a URL) or mtime in ns (local)."""
    if not is_remote(path):
        st = Path(path).stat()
        return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
    with errors(path):
        info = path.fs.info(path.path)
    version = next((info[k] for k in ("ETag", "etag", "generation", "md5Hash", "crc32c",
                                      "LastModified", "mtime", "updated") if info.get(k)), None)
    return [str(path), info.get("size"), str(version)]


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "iad-tf")


def _cache_dir(kind: str, url: AnyPath) -> Path:
    return cache_root() / kind / hashlib.sha256(str(url).encode()).hexdigest()[:16]


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def records_name(records: AnyPath | str) -> str:
    """How a run records the records it read (config.json, cv.json, export metadata): the URL
    as the user gave it (a later command finds it anywhere, through :func:`local_records`),
    never the local cache folder; a local folder as its absolute path."""
    return str(records) if is_remote(records) else str(Path(records).resolve())


def local_records(records: AnyPath | str, check: bool = True) -> Path:
    """A local records directory for ``records``: itself when local; for a URL a cached copy
    of ``manifest.json`` and its shards, each shard's sha256 checked against the manifest
    (``check``); a cached shard is reused while the store's object is the same version (and,
    with ``check``, its sha256 matches). ``check=False`` copies every shard-named file as it
    is (for ``tfrecords-tools verify``, which reports the differences itself).

    Raises :class:`StorageError` naming the URL of a missing or mismatching shard."""
    src = to_path(records) if isinstance(records, str) else records
    if not is_remote(src):
        return Path(src)
    check_bucket(src)
    manifest_url = src / MANIFEST
    with errors(manifest_url):
        if not manifest_url.is_file():
            raise StorageError(f"{src}: no {MANIFEST} (not a records directory, or its build "
                               "has not finished)")
        text = manifest_url.read_text(encoding="utf-8")
    try:
        listed: dict[str, Any] = json.loads(text).get("shards") or {}
    except (json.JSONDecodeError, AttributeError) as exc:
        raise StorageError(f"{manifest_url}: not valid JSON ({exc})") from None
    local = _cache_dir("records", src)
    local.mkdir(parents=True, exist_ok=True)
    sig_file = local / ".versions.json"
    try:
        versions: dict[str, Any] = json.loads(sig_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        versions = {}
    (local / MANIFEST).unlink(missing_ok=True)  # written again when the copy is complete
    names = set(listed)
    if not check:
        with errors(src):
            names |= {p.name for p in src.iterdir() if p.name.endswith(".tfrecord")}
        for stale in local.glob("*.tfrecord"):
            if stale.name not in names:
                stale.unlink()
    for name in sorted(names):
        want = (listed.get(name) or {}).get("sha256")
        dest, shard = local / name, src / name
        with errors(shard):
            present = shard.is_file()
        if not present:
            if check:
                raise StorageError(f"{shard}: listed in {MANIFEST} but missing")
            dest.unlink(missing_ok=True)
            continue
        sig = signature(shard)
        if not (dest.is_file() and versions.get(name) == sig):
            get_file(shard, dest)
            versions[name] = sig
            sig_file.write_text(json.dumps(versions), encoding="utf-8")
        if check and want and sha256_of(dest) != want:
            dest.unlink()
            raise StorageError(f"{shard}: sha256 differs from {MANIFEST} (changed or corrupt)")
    (local / MANIFEST).write_text(text, encoding="utf-8")  # last: the copy is complete
    return local


@contextlib.contextmanager
def local_copy(path: AnyPath) -> Iterator[Path]:
    """A local file with the content of ``path`` (itself when local; a temporary copy for a
    URL, removed afterwards). For libraries that only open local files (LiteRT)."""
    if not is_remote(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="iad-tf-") as tmp:
        dest = Path(tmp) / path.name
        get_file(path, dest)
        yield dest


class Staged:
    """A local working folder mirrored to ``dest``: :meth:`sync` uploads what changed since
    the last sync (size or mtime), the names in ``last`` after the others, and deletes from
    ``dest`` what was synced (or downloaded) before and is gone locally (a finished run's
    ``backup/``). Files whose path relative to the folder matches a glob of ``skip`` (local
    scratch such as cv's fold records) are never uploaded."""

    def __init__(self, dest: AnyPath, local: Path, last: Sequence[str] = (MANIFEST,),
                 skip: Sequence[str] = ()) -> None:
        self.dest, self.local, self.last, self.skip = dest, local, tuple(last), tuple(skip)
        self._seen: dict[Path, tuple[int, int]] = {}

    def _kept(self, p: Path) -> bool:
        rel = p.relative_to(self.local).as_posix()
        return _mirrored(p.name) and not any(fnmatch.fnmatchcase(rel, g) for g in self.skip)

    def sync(self) -> int:
        """Upload new or changed files; returns how many."""
        if not is_remote(self.dest):
            return 0
        files = sorted(p for p in self.local.rglob("*") if p.is_file() and self._kept(p))
        files.sort(key=lambda p: p.name in self.last)
        n = 0
        for p in files:
            try:
                st = p.stat()
            except FileNotFoundError:  # removed while we looked (a rotating backup)
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._seen.get(p) == sig:
                continue
            put_file(p, self.dest.joinpath(*p.relative_to(self.local).parts))
            self._seen[p] = sig
            n += 1
        for p in [p for p in self._seen if not p.exists()]:
            gone = self.dest.joinpath(*p.relative_to(self.local).parts)
            with errors(gone):
                if gone.exists():
                    gone.unlink()
            del self._seen[p]
            n += 1
        return n

    def shown(self, path: object) -> str:
        """How to name ``path`` (a file in the local stand-in) to a user: its URL."""
        text = str(path)
        return text.replace(str(self.local), str(self.dest), 1) if self.local != self.dest else text

    def mark_synced(self) -> None:
        for p in self.local.rglob("*"):
            if p.is_file():
                st = p.stat()
                self._seen[p] = (st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def staged_dir(
    dest: AnyPath, download: bool = True, last: Sequence[str] = (MANIFEST,), skip: Sequence[str] = (),
) -> Iterator[Staged]:
    """A local folder standing in for ``dest``: ``dest`` itself when local; for a URL a
    temporary folder holding ``dest``'s current files (``download``: to resume), uploaded to
    ``dest`` when the block ends (also on error: what was finished is kept) and whenever the
    caller calls ``.sync()`` (``skip``: globs of relative paths kept local, :class:`Staged`)."""
    if not is_remote(dest):  # the folder itself (created by whoever writes into it)
        yield Staged(dest, Path(dest), last, skip)
        return
    check_bucket(dest)
    with tempfile.TemporaryDirectory(prefix="iad-tf-stage-") as tmp:
        local = Path(tmp)
        staged = Staged(dest, local, last, skip)
        if download:
            download_tree(dest, local)
            staged.mark_synced()
        try:
            yield staged
        finally:
            staged.sync()

