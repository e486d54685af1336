"""Foreign model files (``.pth``, ``.safetensors``, TF checkpoints) in, our ``.weights.h5`` out.

``import_file`` reads a file (``modelfile`` readers), identifies its architecture
(``archs``), converts it to Keras, checks the result on a small random input and writes a
``.weights.h5`` with its card (architecture, source file and sha256, license). ``cached``
does the same into the user's cache, keyed by the source's sha256, so ``--weights x.pth``
converts once and afterwards loads as fast as a shipped model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srgan_cli.errors import ModelFileError, WeightsError
from srgan_cli.weights import WEIGHTS_SUFFIX, WeightCard, card_path, sha256_of, verify

if TYPE_CHECKING:
    import keras

    from srgan_cli.archs import ModelSpec, StateDict

CACHE_ENV = "SRGAN_CACHE_DIR"
CACHE_VERSION = 1
"""Bump when a converter changes, so stale conversions are not reused."""
_CHECK_SIDE = 16
"""Side (input px, rounded up to the model's input multiple) of the post-conversion check."""


def cache_dir() -> Path:
    """``$SRGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/srgan``, else ``~/.cache/srgan``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "srgan"


def source_files(path: Path) -> list[Path]:
    """The files ``path`` stands for: a TF checkpoint's index and shards, else the file."""
    from srgan_cli.modelfile.tfckpt import checkpoint_files, checkpoint_prefix

    prefix = checkpoint_prefix(path)
    return [path] if prefix is None else checkpoint_files(prefix)


def source_sha256(path: Path) -> str:
    """sha256 of the file (as ``sha256sum`` prints it); of all its files for a TF checkpoint."""
    files = source_files(path)
    if len(files) == 1:
        return sha256_of(files[0])
    digest = hashlib.sha256()
    for part in files:
        digest.update(sha256_of(part).encode("ascii"))
    return digest.hexdigest()


def read_state(path: Path) -> StateDict:
    """The file's tensors by name: a TF checkpoint (prefix or ``.index``) or a PyTorch file."""
    from srgan_cli.modelfile.tfckpt import checkpoint_prefix

    prefix = checkpoint_prefix(path)
    if prefix is not None:
        from srgan_cli.modelfile.tfckpt import read_checkpoint

        return read_checkpoint(prefix)
    from srgan_cli.archs import ARCHS
    from srgan_cli.modelfile import read_state as read_torch_state

    try:
        return read_torch_state(path)
    except ModelFileError as err:
        supported = ", ".join(arch.name for arch in ARCHS)
        raise ModelFileError(f"{err}; supported architectures: {supported}") from None


def inspect(path: Path) -> ModelSpec:
    """Architecture, hyper-parameters and scale of a model file, without building a model."""
    from srgan_cli.archs import identify

    state = read_state(path)
    with _naming(path):
        return identify(state)[1]


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A ModelFileError raised inside names the file first, as the readers' errors do."""
    try:
        yield
    except ModelFileError as err:
        raise ModelFileError(f"{path.name}: {err}") from None


def check_converted(model: keras.Model, spec: ModelSpec) -> None:
    """Run a small random input through ``model``: finite output of ``scale`` x the size."""
    side = -(-_CHECK_SIDE // spec.input_multiple) * spec.input_multiple
    x = np.random.default_rng(0).uniform(0, 1, (1, side, side, 3)).astype(np.float32)
    y = np.asarray(model.predict_on_batch(x), dtype=np.float32)
    expected = (1, side * spec.scale, side * spec.scale, 3)
    if y.shape != expected:
        raise ModelFileError(f"{spec.arch}: converted model gave shape {y.shape}, not {expected}")
    if not np.all(np.isfinite(y)):
        raise ModelFileError(f"{spec.arch}: converted model gives non-finite values")


def import_file(
    path: Path,
    out: Path,
    *,
    name: str | None = None,
    license: str = "",
    source_sha: str | None = None,
) -> tuple[WeightCard, ModelSpec]:
    """Convert ``path`` to ``out`` (a ``.weights.h5``) plus its card; both written atomically.

    ``source_sha`` is ``source_sha256(path)`` when the caller already has it."""
    from srgan_cli.archs import convert

    if not out.name.endswith(WEIGHTS_SUFFIX):
        raise ModelFileError(f"output {out} must end in {WEIGHTS_SUFFIX}")
    source_sha = source_sha or source_sha256(path)
    state = read_state(path)
    with _naming(path):
        model, spec = convert(state)
        check_converted(model, spec)
    card = WeightCard(
        name=name or default_name(path),
        architecture=spec.to_dict(),
        sha256="",
        description=f"imported {spec.describe()}",
        source={"file": path.name, "sha256": source_sha},
        license=license,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name.removesuffix(WEIGHTS_SUFFIX)}.{os.getpid()}{WEIGHTS_SUFFIX}")
    try:
        model.save_weights(temp)
        card.sha256 = sha256_of(temp)
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    card.write(card_path(out))
    return card, spec


def default_name(path: Path) -> str:
    """The file's name less its suffix, other dots kept: ``4x-UltraSharp.v2`` for
    ``4x-UltraSharp.v2.pth``; ``model`` for a TF checkpoint's ``model.index``."""
    return path.stem or path.name


def cache_path(path: Path, source_sha: str | None = None) -> Path:
    """Where the converted copy of ``path`` lives in the cache (it may not exist yet)."""
    return cache_dir() / f"{source_sha or source_sha256(path)}-v{CACHE_VERSION}{WEIGHTS_SUFFIX}"


def cached(path: Path) -> Path:
    """The converted copy of ``path`` in the cache, converting it on first use."""
    return converted(path)[0]


def converted(path: Path) -> tuple[Path, WeightCard]:
    """``cached`` with the entry's card, verified (or just written), so the caller that loads
    the entry need not hash it again."""
    source_sha = source_sha256(path)  # hashed once: it names the entry and goes in the card
    target = cache_path(path, source_sha)
    if target.is_file() and card_path(target).is_file():
        try:
            return target, verify(target)
        except WeightsError:  # a damaged cache entry is redone, never trusted
            pass
    card, _spec = import_file(path, target, source_sha=source_sha)
    return target, card
