"""The process's binary stdin/stdout (for '-' inputs and outputs).

``click.get_binary_stream`` is deprecated from click 8.5 on; the binary layer under
``sys.stdin``/``sys.stdout`` is what it returned, and looking it up at call time also finds
the streams that click's ``CliRunner`` or the worker put in place. Standard library only.
"""

from __future__ import annotations

import sys
from typing import BinaryIO


def binary_stdin() -> BinaryIO:
    """The binary stream under ``sys.stdin`` (itself when it is already binary)."""
    return getattr(sys.stdin, "buffer", sys.stdin)


def binary_stdout() -> BinaryIO:
    """The binary stream under ``sys.stdout`` (itself when it is already binary)."""
    return getattr(sys.stdout, "buffer", sys.stdout)
