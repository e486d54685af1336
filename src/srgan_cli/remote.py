"""Inputs and outputs named by URI (``s3://``, ``gs://``, ``hdfs://``, ``file:///``).

A ``Uri`` is the URI counterpart of a local ``Path``: it has the pure path operations job
planning uses (``name``, ``stem``, ``suffix``, ``parent``, ``/``, ``with_name``,
``relative_to``) and the few filesystem questions it asks (``exists``, ``is_dir``,
``is_file``, a modification time, listing a directory), answered by the pyarrow filesystem
``pyarrow.fs.FileSystem.from_uri`` picks. So ``jobs.plan_jobs`` and ``jobs.OutputClaims``
apply one set of naming and overwrite rules to both, and the pipeline reads and writes a
``Uri`` through ``read_bytes`` / ``write_atomic`` here.

pyarrow (which ``ray[data]`` brings) is imported only when a URI is used; this module itself
is standard library only, so ``jobs`` can import it without paying for anything.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from srgan_cli.errors import SrganError, UsageError

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

SINGLE_UPLOAD_FILESYSTEMS = frozenset({"s3", "gcs"})
"""Object stores, where an object appears only when its upload completes (so one upload of
the finished bytes is atomic) and "rename" would be a copy plus a delete."""

_FILESYSTEMS: dict[str, Any] = {}
"""One pyarrow filesystem per scheme://authority, so an S3 region lookup happens once."""


def is_uri(text: str) -> bool:
    """True for 'scheme://...' (a pyarrow filesystem URI); local paths stay ``Path``s."""
    return _URI.match(text) is not None


@dataclass(frozen=True)
class Uri:
    """A file or directory on a pyarrow filesystem: ``root`` + ``path`` is the URI.

    ``root`` is 'scheme://' when the filesystem's path includes the authority (S3 and GCS
    paths start with the bucket), else 'scheme://authority' (``file://``, ``hdfs://host``);
    ``path`` is what the filesystem itself calls the file.
    """

    root: str
    path: str
    filesystem: Any = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Uri:
        """UsageError (exit 2) for a scheme pyarrow does not know or a malformed URI;
        SrganError when the filesystem cannot be reached (say, an S3 region lookup fails)."""
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            raise UsageError(
                f"{text}: options in a URI ('?...') are not supported; configure the "
                "filesystem through its environment (AWS_REGION, AWS_ENDPOINT_URL...)"
            )
        key = f"{parts.scheme}://{parts.netloc}"
        filesystem, path = _resolve(text, key)
        root = key if path.startswith("/") else f"{parts.scheme}://"
        return cls(root, path.rstrip("/") or path, filesystem)

    def __str__(self) -> str:
        return self.root + self.path

    def _with_path(self, path: PurePosixPath | str) -> Uri:
        return Uri(self.root, str(path), self.filesystem)

    @property
    def _pure(self) -> PurePosixPath:
        return PurePosixPath(self.path)

    @property
    def name(self) -> str:
        return self._pure.name

    @property
    def stem(self) -> str:
        return self._pure.stem

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def parent(self) -> Uri:
        return self._with_path(self._pure.parent)

    def __truediv__(self, other: str | os.PathLike[str]) -> Uri:
        return self._with_path(self._pure / os.fspath(other))

    def with_name(self, name: str) -> Uri:
        return self._with_path(self._pure.with_name(name))

    def relative_to(self, other: Uri) -> PurePosixPath:
        return self._pure.relative_to(other._pure)

    @property
    def identity(self) -> str:
        """What names the same file: the real local path for a local filesystem (so
        file:///x and /x are one file), else the URI."""
        if self.filesystem.type_name == "local":
            return os.path.realpath(self.path)
        return str(self)

    def _info(self) -> Any:
        try:
            return self.filesystem.get_file_info(self.path)
        except OSError as err:
            raise SrganError(f"cannot reach {self}: {_first_line(err)}") from err

    def exists(self) -> bool:
        return self._type_name() != "NotFound"

    def is_dir(self) -> bool:
        return self._type_name() == "Directory"

    def is_file(self) -> bool:
        return self._type_name() == "File"

    def _type_name(self) -> str:
        return str(self._info().type.name)

    def mtime_ns(self) -> int | None:
        """Modification time in ns; None when missing or the filesystem keeps none."""
        info = self._info()
        return None if info.type.name == "NotFound" else info.mtime_ns

    def files(self, *, recursive: bool) -> list[Uri]:
        """Files in this directory (and below with ``recursive``), sorted; hidden names
        (a leading '.', at any level) skipped, like a shell glob, which also keeps our own
        temporary files out."""
        from pyarrow.fs import FileSelector, FileType

        selector = FileSelector(self.path, recursive=recursive)
        try:
            infos = self.filesystem.get_file_info(selector)
        except OSError as err:
            raise SrganError(f"cannot list {self}: {_first_line(err)}") from err
        found = []
        for info in infos:
            relative = PurePosixPath(info.path).relative_to(self._pure)
            if info.type == FileType.File and not any(p.startswith(".") for p in relative.parts):
                found.append(self._with_path(info.path))
        return sorted(found, key=str)

    def read_bytes(self) -> bytes:
        """The whole file; OSError with a one-line reason (pyarrow's can run to several)."""
        try:
            with self.filesystem.open_input_stream(self.path) as stream:
                return bytes(stream.read())
        except OSError as err:
            raise OSError(_first_line(err)) from err

    def write_atomic(self, write: Callable[[BinaryIO], None]) -> None:
        """Write what ``write`` puts into a file object so that no reader ever sees part of it.

        The bytes are finished in memory first. Object stores (``SINGLE_UPLOAD_FILESYSTEMS``)
        get them in one upload, which becomes visible only when complete. Every other
        filesystem (local, HDFS...) gets a hidden temporary file beside the target that is
        then renamed onto it (``move``; a rename there), and removed on any failure.
        """
        buffer = io.BytesIO()
        write(buffer)
        data = buffer.getvalue()
        try:
            if self.filesystem.type_name in SINGLE_UPLOAD_FILESYSTEMS:
                self._upload(self.path, data)
            else:
                self._write_and_rename(data)
        except OSError as err:
            raise OSError(_first_line(err)) from err

    def _upload(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)

    def _write_and_rename(self, data: bytes) -> None:
        self.filesystem.create_dir(self.parent.path, recursive=True)
        temp = self.parent / f".{self.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self._upload(temp.path, data)
            self.filesystem.move(temp.path, self.path)
        except BaseException:
            with suppress(OSError):
                self.filesystem.delete_file(temp.path)
            raise


def _resolve(text: str, key: str) -> tuple[Any, str]:
    """(filesystem, path) for ``text``; the filesystem is shared by every URI with ``key``."""
    try:
        from pyarrow.fs import FileSystem
    except ImportError as err:
        raise UsageError(f"{text}: URIs need pyarrow: pip install 'srgan-cli[ray]'") from err
    try:
        filesystem, path = FileSystem.from_uri(text)
    except ValueError as err:  # pyarrow.ArrowInvalid: unknown scheme, malformed URI
        raise UsageError(f"{text}: {_first_line(err)}") from err
    except OSError as err:
        raise SrganError(f"cannot reach {text}: {_first_line(err)}") from err
    return _FILESYSTEMS.setdefault(key, filesystem), path


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
