"""Which inputs become which outputs: the job planning every front end shares.

INPUT arguments (files, directories, globs, ``-``) and ``-o`` turn into ``Job`` objects with
their output paths, and ``output_is_up_to_date`` / ``same_file`` decide what an existing
output means. An argument written as a URI (``s3://...``, ``file:///...``) becomes a
``remote.Uri`` instead of a ``Path`` and follows the same rules (globs aside). The CLI,
the server, a worker or a Ray engine all plan through here, so they agree on names and on
what is skipped. Standard library only (no numpy, Pillow, TensorFlow or
click): a light client imports it without paying for the model's stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from srgan_cli.errors import UsageError
from srgan_cli.formats import DEFAULT_FORMAT, OutputFormat, format_for_path
from srgan_cli.remote import Uri, is_uri

DEFAULT_SUFFIX = "_x4"
"""Added to the stem of outputs written beside their input."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
)
"""Suffixes taken from directories and globs (any case); a file named explicitly is always tried."""

STDIN = "-"
STDIN_NAME = "<stdin>"
_GLOB_MAGIC = re.compile(r"[*?[]")

Location = Path | Uri
"""Where an input or output lives: a local (or shared-filesystem) path, or a URI."""


def location(text: str) -> Location:
    """A ``Uri`` for 'scheme://...', else a ``Path`` (UsageError for an unknown scheme)."""
    return Uri.parse(text) if is_uri(text) else Path(text)


def identity(place: Location) -> str:
    """What names the same file however it was written (symlinks, file:// resolved)."""
    return place.identity if isinstance(place, Uri) else os.path.realpath(place)


@dataclass
class Job:
    """One image to do: ``input`` None reads ``stdin_bytes``; ``output`` None writes stdout.

    ``format`` is the output format's name (``formats.FORMATS``), agreeing with the
    output's extension.
    """

    input: Location | None
    output: Location | None
    display_name: str
    format: str = DEFAULT_FORMAT


@dataclass(frozen=True)
class InputFile:
    """One input found from the arguments.

    ``path`` None is stdin. ``root`` is the directory given (or a glob's fixed prefix) that
    the output keeps the relative path from; None for a file named explicitly.
    """

    path: Location | None
    root: Location | None = None

    @property
    def display_name(self) -> str:
        return STDIN_NAME if self.path is None else str(self.path)


def find_inputs(patterns: Sequence[str], *, recursive: bool) -> list[InputFile]:
    """Expand INPUT arguments; de-duplicated by resolved path and sorted by name.

    UsageError (exit 2) when an argument matches nothing, or '-' is mixed with other inputs.
    """
    if STDIN in patterns:
        if len(patterns) > 1:
            raise UsageError("'-' (standard input) must be the only INPUT")
        return [InputFile(None)]
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        for item in _expand(pattern, recursive):
            assert item.path is not None
            found.setdefault(identity(item.path), item)
    return sorted(found.values(), key=lambda item: str(item.path))


def _expand(pattern: str, recursive: bool) -> list[InputFile]:
    """One argument -> its inputs: the file itself, a directory's images, or glob matches
    (local paths only: object stores have no globs)."""
    path = location(pattern)
    if path.is_dir():
        files = _directory_images(path, recursive)
        if not files:
            hint = "" if recursive else " (use -r to descend into subdirectories)"
            raise UsageError(f"no images in directory {pattern}{hint}")
        return [InputFile(file, path) for file in files]
    if path.exists():
        return [InputFile(path)]
    if isinstance(path, Path) and _GLOB_MAGIC.search(pattern):
        import glob

        matches = [Path(m) for m in glob.glob(pattern, recursive=True)]
        files = sorted(m for m in matches if _is_image_file(m))
        if not files:
            raise UsageError(f"no images match {pattern!r}")
        return [InputFile(file, _glob_root(pattern)) for file in files]
    raise UsageError(f"no such file or directory: {pattern}")


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _directory_images(directory: Location, recursive: bool) -> list[Location]:
    """Image files in ``directory`` (and below with ``recursive``); hidden names skipped,
    like a shell glob, which also keeps our own ``.name.tmp`` files out."""
    if isinstance(directory, Uri):
        files = directory.files(recursive=recursive)
        return [file for file in files if file.suffix.lower() in IMAGE_SUFFIXES]
    found: list[Location] = []
    for top, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found.extend(
            Path(top, name)
            for name in files
            if not name.startswith(".") and _is_image_file(Path(top, name))
        )
    return sorted(found)


def _glob_root(pattern: str) -> Path:
    """The directory part of a glob before its first wildcard: 'a/b/**/*.png' -> 'a/b'."""
    fixed: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def plan_jobs(
    patterns: Sequence[str],
    output: str | None,
    *,
    recursive: bool,
    suffix: str = DEFAULT_SUFFIX,
    output_format: str | None = None,
) -> list[Job]:
    """INPUT arguments and ``-o`` -> jobs with their output paths (None = stdout).

    One file: ``-o`` is the output file ('-' = stdout; an existing directory gets
    <stem>.<ext>), and its extension picks the format. Several inputs, a directory or a glob:
    ``-o`` is a directory and each output is DIR/<path relative to its root>/<stem>.<ext>.
    No ``-o``: <stem><suffix>.<ext> beside each input; stdin goes to stdout. ``<ext>`` and
    the format of stdout and of an extensionless ``-o`` come from ``output_format`` (default
    png). UsageError (exit 2) for an unknown ``-o`` extension, or one that contradicts
    ``output_format``.
    """
    chosen = output_format or DEFAULT_FORMAT
    ext = OutputFormat(chosen).extension
    sources = find_inputs(patterns, recursive=recursive)
    if output is None:
        return [Job(s.path, _beside(s.path, suffix, ext), s.display_name, chosen) for s in sources]
    batch = len(sources) > 1 or any(s.root is not None for s in sources)
    if not batch:
        (source,) = sources
        target = _single_output(source, output, ext)
        named = chosen if target is None else _format_of(str(target), output_format)
        return [Job(source.path, target, source.display_name, named)]
    out_dir = _output_directory(output, len(sources))
    sources = _outside(out_dir, sources)
    return [Job(s.path, _in_directory(out_dir, s, ext), s.display_name, chosen) for s in sources]


def _format_of(target: str, requested: str | None) -> str:
    """The format an output file's extension asks for; ``requested`` must agree with it."""
    named = format_for_path(target, default=requested or DEFAULT_FORMAT)
    if requested is not None and named != requested:
        raise UsageError(f"--format {requested} contradicts the extension of -o {target}")
    return named


def _beside(path: Location | None, suffix: str, ext: str) -> Location | None:
    return None if path is None else path.with_name(f"{path.stem}{suffix}{ext}")


def _single_output(source: InputFile, output: str, ext: str) -> Location | None:
    """'-' is stdout; an existing directory (or a path ending in '/') gets <stem><ext>."""
    if output == STDIN:
        return None
    target = location(output)
    as_directory = target.is_dir() or output.endswith(("/", os.sep))
    if as_directory and source.path is not None:
        return target / f"{source.path.stem}{ext}"
    return target


def _outside(out_dir: Location, sources: list[InputFile]) -> list[InputFile]:
    """Drop images found by a directory walk or glob inside the output directory.

    Without this, 'srgan upscale photos -r -o photos/big' would take last run's outputs as
    new inputs. Files named explicitly are kept (they are always tried).
    """
    fence = os.path.join(identity(out_dir), "")
    kept = [
        s
        for s in sources
        if s.root is None or s.path is None or not identity(s.path).startswith(fence)
    ]
    if not kept:
        raise UsageError(f"no images outside the output directory {out_dir}")
    return kept


def _output_directory(output: str, count: int) -> Location:
    """``-o`` for a batch must be a directory (existing or to be created)."""
    target = location(output)
    looks_like_file = target.suffix.lower() in IMAGE_SUFFIXES or output == STDIN
    if (target.exists() and not target.is_dir()) or (looks_like_file and not target.is_dir()):
        raise UsageError(
            f"-o {output} is a file, but {count} input(s) from several files, a directory or "
            "a pattern need an output directory"
        )
    return target


def _in_directory(out_dir: Location, source: InputFile, ext: str) -> Location:
    assert source.path is not None
    name = f"{source.path.stem}{ext}"
    if source.root is None:
        return out_dir / name
    return out_dir / source.path.parent.relative_to(source.root) / name


def same_file(output: Location, source: Location | None) -> bool:
    """True when ``output`` exists and is ``source`` (hard links, bind mounts included)."""
    if source is None:
        return False
    if isinstance(output, Uri) or isinstance(source, Uri):
        return identity(output) == identity(source)
    try:
        return os.path.samefile(output, source)
    except OSError:
        return False


def output_is_up_to_date(output: Location | None, source: Location | None) -> bool:
    """make's rule: an output at least as new as its input needs no work. stdin is never
    up to date (it has no time) and stdout never exists; nor is a file without a time."""
    if output is None or source is None:
        return False
    output_time, source_time = _mtime_ns(output), _mtime_ns(source)
    return output_time is not None and source_time is not None and output_time >= source_time


def _mtime_ns(place: Location) -> int | None:
    if isinstance(place, Uri):
        return place.mtime_ns()
    try:
        return place.stat().st_mtime_ns
    except OSError:
        return None


@dataclass(frozen=True)
class OutputDecision:
    """What to do with one job's output: write it, skip it (``skip``) or refuse (``error``)."""

    error: str | None = None
    skip: bool = False


class OutputClaims:
    """The batch-wide output rules, applied job by job in job order.

    No output may be an input of the batch or the output of an earlier job. An existing
    output is skipped when ``skip_existing`` and it is up to date, and is an error unless
    ``overwrite`` or ``skip_existing``. One place for these rules, so the in-process pipeline
    (which checks as it reads) and the Ray engine (which decides on the driver before any
    worker writes, so a retried task gets the same answer) agree.
    """

    def __init__(self, jobs: Sequence[Job], *, overwrite: bool, skip_existing: bool) -> None:
        self.inputs = {identity(job.input) for job in jobs if job.input is not None}
        self.claimed: dict[str, str] = {}
        self.overwrite = overwrite
        self.skip_existing = skip_existing

    def check(self, job: Job) -> OutputDecision:
        """Decide for ``job`` and claim its output (a later job naming it is refused)."""
        if job.output is None:
            return OutputDecision()
        target = identity(job.output)
        if target in self.inputs or same_file(job.output, job.input):
            return OutputDecision(
                f"{job.display_name}: refusing to overwrite input file {job.output}"
            )
        if target in self.claimed:
            first = self.claimed[target]
            return OutputDecision(
                f"{job.display_name}: output {job.output} is also the output of {first}"
            )
        self.claimed[target] = job.display_name
        if not job.output.exists():
            return OutputDecision()
        if self.skip_existing and output_is_up_to_date(job.output, job.input):
            return OutputDecision(skip=True)
        if not (self.overwrite or self.skip_existing):
            return OutputDecision(
                f"{job.display_name}: {job.output} exists (use --overwrite or --skip-existing)"
            )
        return OutputDecision()
