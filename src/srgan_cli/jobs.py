"""Which inputs become which outputs: the job planning every front end shares.

INPUT arguments (files, directories, globs, ``-``) and ``-o`` turn into ``Job`` objects with
their output paths (``plan_run``: a ``Plan``, also naming the arguments that matched nothing
and counting earlier outputs left out), and ``OutputClaims`` decides what an existing output
means (refuse, ``--overwrite``, ``--skip-existing``, ``--update``). An argument written as a
URI (``s3://...``, ``file:///...``) becomes a ``remote.Uri`` instead of a ``Path`` and
follows the same rules (globs aside). The CLI, the server, a worker or a Ray engine all plan
through here, so they agree on names and on what is skipped. Standard library only (no
numpy, Pillow, TensorFlow or click): a light client imports it without paying for the
model's stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan_cli import SCALE
from srgan_cli.errors import UsageError
from srgan_cli.formats import DEFAULT_FORMAT, EXTENSIONS, OutputFormat, format_for_path
from srgan_cli.remote import Uri, is_uri


def default_suffix(scale: float) -> str:
    """What outputs beside their input add to the stem: '_x' and the real output scale.

    The number as written, shortest form: 4 -> '_x4', 2.0 -> '_x2', 1.5 -> '_x1.5'. So
    ``--outscale 2`` writes ``a_x2.png``, not a 2x image named ``_x4``.
    """
    text = repr(float(scale))
    return "_x" + text.removesuffix(".0")


DEFAULT_SUFFIX = default_suffix(SCALE)
"""The suffix at the model's own scale (``_x4``)."""

_EARLIER_OUTPUT = re.compile(r"(?P<stem>.+)_x[0-9]+(?:\.[0-9]+)?")
"""The stem of a default output name: '<stem>_x<S>' (see ``default_suffix``)."""

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


@dataclass
class Inputs:
    """What INPUT arguments found: the inputs, the arguments that matched nothing (each
    with its one-line message) and how many earlier outputs directories and globs held."""

    files: list[InputFile]
    missing: dict[str, str]
    ignored: int = 0


@dataclass
class Plan:
    """A planned run: the jobs, the arguments that matched nothing (argument -> one line
    for stderr; the run goes on and exits 1) and the earlier outputs left out of
    directories and globs (said once in the summary)."""

    jobs: list[Job]
    missing: dict[str, str]
    ignored: int = 0


def find_inputs(patterns: Sequence[str], *, recursive: bool) -> list[InputFile]:
    """Expand INPUT arguments; de-duplicated by resolved path and sorted by name.

    UsageError (exit 2) when an argument matches nothing, or '-' is mixed with other inputs.
    """
    found = collect_inputs(patterns, recursive=recursive)
    if found.missing:
        raise UsageError(next(iter(found.missing.values())))
    return found.files


def collect_inputs(
    patterns: Sequence[str], *, recursive: bool, suffixes: Sequence[str] = ()
) -> Inputs:
    """Expand INPUT arguments; de-duplicated by resolved path and sorted by name.

    An argument that matches nothing is named in ``missing`` while others match; when none
    matches anything, that is a UsageError (exit 2), as is '-' mixed with other inputs.
    Directories and globs leave out our earlier outputs (``_without_earlier_outputs``; ``suffixes``
    adds a ``--suffix`` of the user's own to the '_x<S>' names).
    """
    if STDIN in patterns:
        if len(patterns) > 1:
            raise UsageError("'-' (standard input) must be the only INPUT")
        return Inputs([InputFile(None)], {})
    found: dict[str, InputFile] = {}
    missing: dict[str, str] = {}
    ignored = 0
    for pattern in patterns:
        try:
            items, skipped = _expand(pattern, recursive, suffixes)
        except _NothingMatched as err:
            missing[pattern] = str(err)
            continue
        ignored += skipped
        for item in items:
            assert item.path is not None
            found.setdefault(identity(item.path), item)
    if not found:
        raise UsageError("; ".join(missing.values()))
    return Inputs(sorted(found.values(), key=lambda item: str(item.path)), missing, ignored)


class _NothingMatched(Exception):
    """One INPUT argument matched no file (its message names the argument)."""


def _expand(pattern: str, recursive: bool, suffixes: Sequence[str]) -> tuple[list[InputFile], int]:
    """One argument -> its inputs (the file itself, a directory's images, or glob matches;
    local paths only: object stores have no globs) and how many earlier outputs were left
    out of a directory or glob."""
    path = location(pattern)
    if path.is_dir():
        files = _directory_images(path, recursive)
        if not files:
            hint = "" if recursive else " (use -r to descend into subdirectories)"
            raise _NothingMatched(f"no images in directory {pattern}{hint}")
        kept = _without_earlier_outputs(files, suffixes)
        return [InputFile(file, path) for file in kept], len(files) - len(kept)
    if path.exists():
        return [InputFile(path)], 0
    if isinstance(path, Path) and _GLOB_MAGIC.search(pattern):
        import glob

        matches = [Path(m) for m in glob.glob(pattern, recursive=True)]
        files = sorted(m for m in matches if _is_image_file(m))
        if not files:
            raise _NothingMatched(f"no images match {pattern!r}")
        kept = _without_earlier_outputs(files, suffixes)
        root = _glob_root(pattern)
        return [InputFile(file, root) for file in kept], len(files) - len(kept)
    raise _NothingMatched(f"no such file or directory: {pattern}")


def _without_earlier_outputs(files: list[Location], suffixes: Sequence[str]) -> list[Location]:
    """``files`` less those that are the default output of another of them.

    '<stem>_x<S>.<ext>' (any scale S, any extension we write) beside '<stem>.<any image
    ext>' in the same directory is what a run without ``-o`` wrote there: taking it as an
    input would write 'a_x4_x4.png' on the next run, 16x the pixels. Chains left by such
    runs go too ('a_x4_x4.png' beside 'a_x4.png'). Only for directories and globs; a file
    named on the command line is always an input.
    """
    stems: dict[str, set[str]] = {}
    for file in files:
        stems.setdefault(str(file.parent), set()).add(file.stem)
    return [file for file in files if not _is_earlier_output(file, stems, suffixes)]


def _is_earlier_output(file: Location, stems: dict[str, set[str]], suffixes: Sequence[str]) -> bool:
    if file.suffix.lower() not in EXTENSIONS:
        return False
    beside = stems[str(file.parent)]
    match = _EARLIER_OUTPUT.fullmatch(file.stem)
    if match is not None and match.group("stem") in beside:
        return True
    return any(
        suffix and file.stem.endswith(suffix) and file.stem[: -len(suffix)] in beside
        for suffix in suffixes
    )


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


def plan_jobs(patterns: Sequence[str], output: str | None, **options: Any) -> list[Job]:
    """``plan_run(patterns, output, **options)``'s jobs, strictly: UsageError (exit 2) when
    any argument matches nothing (for callers that want all or nothing)."""
    plan = plan_run(patterns, output, **options)
    if plan.missing:
        raise UsageError(next(iter(plan.missing.values())))
    return plan.jobs


def plan_run(
    patterns: Sequence[str],
    output: str | None,
    *,
    recursive: bool,
    scale: float = SCALE,
    suffix: str | None = None,
    output_format: str | None = None,
) -> Plan:
    """INPUT arguments and ``-o`` -> jobs with their output paths (None = stdout).

    One file: ``-o`` is the output file ('-' = stdout), and its extension picks the format;
    an existing directory or a path ending in '/' gets <stem>.<ext>, and a path with no
    extension is a UsageError (a file or a directory? the message says how to say which).
    Several inputs, a directory or a glob: ``-o`` is a directory (created when missing) and
    each output is DIR/<path relative to its root>/<stem>.<ext>. No ``-o``:
    <stem><suffix>.<ext> beside each input, ``suffix`` by default '_x' and the output
    ``scale`` (``default_suffix``: the model's scale, or ``--outscale``); stdin goes to
    stdout. ``<ext>`` and the format of stdout come from ``output_format`` (default png).
    UsageError (exit 2) for an unknown ``-o`` extension, one that contradicts
    ``output_format``, or when no argument matches anything; an argument that matches
    nothing while others do is named in ``Plan.missing``.
    """
    chosen = output_format or DEFAULT_FORMAT
    ext = OutputFormat(chosen).extension
    suffix = default_suffix(scale) if suffix is None else suffix
    found = collect_inputs(patterns, recursive=recursive, suffixes=(suffix,))
    sources = found.files
    if output is None:
        jobs = [Job(s.path, _beside(s.path, suffix, ext), s.display_name, chosen) for s in sources]
        return Plan(jobs, found.missing, found.ignored)
    several = len(patterns) > 1 and not _names_a_file(output)  # 'a.png ./a.png -o out'
    batch = several or len(sources) > 1 or any(s.root is not None for s in sources)
    if not batch and not found.missing:
        (source,) = sources
        target = _single_output(source, output, ext)
        named = chosen if target is None else _format_of(str(target), output_format)
        return Plan([Job(source.path, target, source.display_name, named)], {}, found.ignored)
    if found.missing and _names_a_file(output):
        raise UsageError("; ".join(found.missing.values()))  # a typo, not a batch
    out_dir = _output_directory(output, len(sources) + len(found.missing))
    sources = _outside(out_dir, sources)
    jobs = [Job(s.path, _in_directory(out_dir, s, ext), s.display_name, chosen) for s in sources]
    return Plan(jobs, found.missing, found.ignored)


def _format_of(target: str, requested: str | None) -> str:
    """The format an output file's extension asks for; ``requested`` must agree with it."""
    named = format_for_path(target, default=requested or DEFAULT_FORMAT)
    if requested is not None and named != requested:
        raise UsageError(f"--format {requested} contradicts the extension of -o {target}")
    return named


def _beside(path: Location | None, suffix: str, ext: str) -> Location | None:
    return None if path is None else path.with_name(f"{path.stem}{suffix}{ext}")


def _single_output(source: InputFile, output: str, ext: str) -> Location | None:
    """'-' is stdout; an existing directory (or a path ending in '/') gets <stem><ext>; any
    other path must have an extension (it is the output file)."""
    if output == STDIN:
        return None
    target = location(output)
    as_directory = target.is_dir() or output.endswith(("/", os.sep))
    if as_directory and target.exists() and not target.is_dir():
        raise UsageError(f"-o {output}: {output.rstrip('/' + os.sep)} is a file, not a directory")
    if as_directory and source.path is not None:
        return target / f"{source.path.stem}{ext}"
    if not target.suffix:
        stem = source.path.stem if source.path is not None else "out"
        raise UsageError(
            f"-o {output} has no extension: write -o {output}{ext} for a file, "
            f"or -o {output}/ for a directory (then {output}/{stem}{ext})"
        )
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
    if _names_a_file(output):
        raise UsageError(
            f"-o {output} is a file, but {count} input(s) from several files, a directory or "
            "a pattern need an output directory"
        )
    return target


def _names_a_file(output: str) -> bool:
    """'-', an existing file, or a path with an image extension that is not a directory."""
    target = location(output)
    if target.is_dir():
        return False
    return target.exists() or output == STDIN or target.suffix.lower() in IMAGE_SUFFIXES


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


EXISTING_OPTIONS = ("--overwrite", "--skip-existing", "--update")
"""What may happen to an existing output, one at most; without any, it is an error."""


def check_existing_choice(*, overwrite: bool, skip_existing: bool, update: bool) -> None:
    """At most one of the three (exit 2): each says something different about an existing
    output, and any two contradict each other."""
    chosen = (overwrite, skip_existing, update)
    given = [name for name, on in zip(EXISTING_OPTIONS, chosen, strict=True) if on]
    if len(given) > 1:
        raise UsageError(f"give one of {', '.join(EXISTING_OPTIONS)}, not {' and '.join(given)}")


class OutputClaims:
    """The batch-wide output rules, applied job by job in job order.

    No output may be an input of the batch or the output of an earlier job. An existing
    output is replaced with ``overwrite``, kept with ``skip_existing`` (whatever its age: a
    resumed run never redoes finished work), replaced only when older than its input with
    ``update`` (make's rule, rsync's ``-u``), and is an error otherwise. One place for these
    rules, so the in-process pipeline (which checks as it reads), the CLI (which decides
    before the model loads) and the Ray engine (which decides on the driver before any
    worker writes, so a retried task gets the same answer) agree.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        overwrite: bool,
        skip_existing: bool,
        update: bool = False,
    ) -> None:
        check_existing_choice(overwrite=overwrite, skip_existing=skip_existing, update=update)
        self.inputs = {identity(job.input) for job in jobs if job.input is not None}
        self.claimed: dict[str, str] = {}
        self.overwrite = overwrite
        self.skip_existing = skip_existing
        self.update = update

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
        if self.overwrite or not job.output.exists():
            return OutputDecision()
        if self.skip_existing:
            return OutputDecision(skip=True)
        if self.update:
            return OutputDecision(skip=output_is_up_to_date(job.output, job.input))
        return OutputDecision(
            f"{job.display_name}: {job.output} exists "
            "(use --overwrite, --update or --skip-existing)"
        )
