"""Keep TensorFlow's start-up notices off stderr: one helper, used wherever TF first loads.

On a machine without a GPU, importing TensorFlow prints its oneDNN notice, "Could not find
cuda drivers" and, at the first operation, "failed call to cuInit: CUDA error"; none of it
is ours to show, and it would bury the one summary line of ``srgan upscale`` or the output
of a program using the library. ``TF_CPP_MIN_LOG_LEVEL=3`` silences what TensorFlow logs
after its logging starts; the lines printed before that (they ignore the level) are held
back while TensorFlow loads and dropped, and everything else written to stderr meanwhile
is passed on. ``SRGAN_DEBUG=1`` leaves TensorFlow alone, and so does a
``TF_CPP_MIN_LOG_LEVEL`` set by the user (``0`` shows everything). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from srgan_cli.errors import SrganError

DEBUG_ENV = "SRGAN_DEBUG"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"
"""Fatal errors only: the CUDA probe's 'failed call to cuInit' is logged as an error."""

_NOTICE = re.compile(
    r"[IWEF]\d{4} [0-9:.]+ +\d+ \S+:\d+\] "  # absl's line prefix (its clock may be odd)
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
)
_depth = 0


def debugging() -> bool:
    """``SRGAN_DEBUG`` is set to something other than '', '0' or 'no'."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "no", "false")


@contextlib.contextmanager
def quiet_tensorflow_startup() -> Iterator[None]:
    """Load TensorFlow (import it, build the first model) inside this block, quietly.

    Does nothing once TensorFlow is loaded, inside another such block, or when
    ``SRGAN_DEBUG`` is set. Otherwise sets ``TF_CPP_MIN_LOG_LEVEL`` to 3 unless the user
    set it, and holds back file descriptor 2 for the block: TensorFlow's notices are
    dropped, other lines are written on afterwards. When the block fails with anything but
    our own one-line ``SrganError``, all of it is shown, so nothing that explains a crash
    is lost.
    """
    global _depth
    if _depth or debugging() or "tensorflow" in sys.modules:
        yield
        return
    if os.environ.setdefault(LOG_LEVEL_ENV, QUIET_LEVEL) == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    keep = _others
    _depth += 1
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            except SrganError:
                raise
            except Exception:
                keep = _everything
                raise
            finally:
                os.dup2(saved, 2)
                held.seek(0)
                text = keep(held.read().decode("utf-8", "replace"))
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()
    finally:
        _depth -= 1
        os.close(saved)


def _others(text: str) -> str:
    """``text`` without TensorFlow's start-up notices."""
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not _NOTICE.match(line))


def _everything(text: str) -> str:
    return text
