"""Which jobs one of N cooperating processes does: ``--shard I/N`` for job arrays.

A Slurm array, a Kubernetes indexed Job or GNU parallel starts N copies of the same command;
each keeps the jobs whose *shard key* hashes to its index. The key is the output path relative
to the output root (the ``-o`` argument), written with '/' separators, so:

- it is the same on every machine and in every Python run (sha256, not ``hash()``, which is
  salted per process), even when ``-o`` is mounted at different places;
- adding or removing inputs never moves another file to a different shard (each file's
  shard depends on its own key only, not on the length or order of the job list);
- two jobs that would write the same output land in the same shard, so the pipeline's
  "also the output of" check still sees both.

Without ``-o`` (outputs beside their inputs) the key is the output path as planned, i.e.
relative to the working directory when the inputs were given as relative paths: run every
shard from the same directory with the same arguments (the usual job-array setup). A job
writing to stdout is keyed by its input. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from srgan_cli.errors import UsageError
from srgan_cli.jobs import STDIN, Job

_SHARD_SPEC = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count`` disjoint parts of a job list."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str) -> Shard:
    """'I/N' -> Shard(I, N) with 1 <= I <= N; UsageError (exit 2) for anything else.

    1-based because Slurm's array ids and GNU parallel's slots usually are; Kubernetes'
    JOB_COMPLETION_INDEX is 0-based, so an indexed Job passes $((JOB_COMPLETION_INDEX + 1)).
    """
    match = _SHARD_SPEC.fullmatch(spec.strip())
    if match is None:
        raise UsageError(f"--shard {spec!r} must be I/N, e.g. 1/4 (I from 1 to N)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {spec}: I must be from 1 to N, and N at least 1")
    return Shard(index, count)


def shard_key(job: Job, output_root: str | os.PathLike[str] | None) -> str:
    """The text a job's shard is hashed from (see the module docstring).

    Purely lexical (``os.path.relpath`` on the paths as given, no symlinks resolved) so
    nodes with different mounts agree; '/' separators so Windows and POSIX agree. A URI is
    taken as its text, so 'DST/a.png' keys the same under ``-o /mnt/x`` and ``-o s3://x``.
    """
    target = job.output if job.output is not None else job.input
    if target is None:
        return STDIN
    if output_root is not None and job.output is not None:
        relative = os.path.relpath(str(job.output), str(output_root))
        return PurePath(relative).as_posix()
    return PurePath(os.path.normpath(str(target))).as_posix()


def shard_of(key: str, count: int) -> int:
    """The 1-based shard ``key`` belongs to out of ``count``: first 8 bytes of its sha256."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(
    jobs: Sequence[Job], shard: Shard, output_root: str | os.PathLike[str] | None
) -> list[Job]:
    """The jobs of ``shard``, in their original order.

    ``output_root`` is the ``-o`` argument (None without one, or '-' for stdout). Every
    shard of the same command gets a disjoint part and the parts together are ``jobs``.
    """
    root = None if output_root in (None, STDIN) else Path(output_root)
    return [job for job in jobs if shard_of(shard_key(job, root), shard.count) == shard.index]
