"""Where a user's worker lives: a private directory holding its socket, lock and log.

``$XDG_RUNTIME_DIR/srgan`` when the session has one (per user, cleared at logout), else
``<tmp>/srgan-<uid>``. Either way the directory is the user's own with mode 0700, so no other
user can reach the socket even before the worker checks the peer's uid. Standard library only.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from srgan_cli.errors import SrganError

RUNTIME_ENV = "XDG_RUNTIME_DIR"
SOCKET_NAME = "worker-{uid}.sock"
LOCK_NAME = "worker-{uid}.lock"
LOG_NAME = "worker-{uid}.log"
SOCKET_PATH_MAX = 107
"""sun_path holds 108 bytes with the terminating NUL on Linux."""


def runtime_dir() -> Path:
    """The per-user directory (not created here): see the module docstring."""
    base = os.environ.get(RUNTIME_ENV)
    if base and os.path.isdir(base):
        return Path(base) / "srgan"
    return Path(tempfile.gettempdir()) / f"srgan-{os.getuid()}"


def private_dir() -> Path:
    """``runtime_dir()``, created 0700 if missing; refused if another user owns it.

    A directory in a shared /tmp could have been made by someone else to catch our socket,
    so it must be ours, a real directory (not a symlink) and closed to group and others.
    """
    path = runtime_dir()
    try:
        path.mkdir(mode=0o700, parents=False, exist_ok=True)
        info = path.lstat()
    except OSError as err:
        raise SrganError(f"cannot create worker directory {path}: {err.strerror}") from err
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise SrganError(f"worker directory {path} is not a directory owned by this user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def _named(template: str) -> Path:
    return runtime_dir() / template.format(uid=os.getuid())


def socket_path() -> Path:
    """The Unix socket the worker listens on (one per user)."""
    return _named(SOCKET_NAME)


def lock_path() -> Path:
    """Held while a worker is being started, so ``make -j`` clients start only one."""
    return _named(LOCK_NAME)


def log_path() -> Path:
    """The worker's own stderr (start-up failures, crashes); calls' output goes to clients."""
    return _named(LOG_NAME)
