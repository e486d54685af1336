"""One exception family, so every failure reaches the user as a single actionable line."""

from __future__ import annotations

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C or SIGTERM (128 + SIGINT), the same in-process and via the worker."""


class SrganError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits non-zero."""

    exit_code = 1


class UsageError(SrganError):
    """The command line cannot be satisfied (bad option, nothing matched): exit code 2."""

    exit_code = 2


class ImageError(SrganError):
    """An input image cannot be read or is refused (bad bytes, too many pixels)."""


class WeightsError(SrganError):
    """Model weights are missing, corrupted, or do not match the architecture."""


class ModelFileError(SrganError):
    """A foreign model file is unknown, damaged, unsafe, or does not fit its architecture."""

    exit_code = 2
