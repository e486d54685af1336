"""Find, verify and load generator weights shipped in the wheel (``srgan_cli/weights``).

Each model is ``<name>.weights.h5`` plus a JSON card (architecture, training, metrics,
sha256). Loading refuses a file whose hash or architecture does not match its card, so the
CLI can never silently run with wrong or random weights.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srgan_cli.errors import WeightsError

if TYPE_CHECKING:
    from srgan_cli.archs import ModelSpec

MODEL_NAMES = ("srgan", "srresnet", "real")
AUTO_MODEL = "auto"
"""Not a file: per image, ``srgan`` or ``real`` from the input's header (``autoselect``)."""
AUTO_MEMBERS = ("srgan", "real")
"""The shipped models ``auto`` holds (``autoselect.AUTO_MODELS`` names the same two)."""
MODEL_CHOICES = (AUTO_MODEL, *MODEL_NAMES)
"""What ``--model`` takes."""
DEFAULT_MODEL = AUTO_MODEL
SINGLE_DEFAULT = "srgan"
"""The one file ``resolve`` gives when no model is named (``auto`` names two)."""
OWN_ARCH = "SRResNet"
"""``ModelSpec.arch`` of our own generator (``model.py``); its cards carry no ``arch`` key."""
WEIGHTS_SUFFIX = ".weights.h5"


@dataclass
class WeightCard:
    """The JSON card next to a weights file; ``sha256`` is of the ``.weights.h5`` bytes."""

    name: str
    architecture: dict[str, Any]
    sha256: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    """For an imported model: the original file's name and sha256 (``srgan import``)."""
    license: str = ""

    @classmethod
    def read(cls, path: Path) -> WeightCard:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as err:
            raise WeightsError(f"cannot read weight card {path}: {err}") from err

    def write(self, path: Path) -> None:
        """Write the card atomically (``source`` and ``license`` only when set)."""
        from srgan_cli.imageio import write_atomic

        data = {k: v for k, v in self.__dict__.items() if v or k not in _OPTIONAL_FIELDS}
        write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


_OPTIONAL_FIELDS = ("source", "license")
"""Card fields written only when set, so cards of our own models keep their exact shape."""


def shipped_weights_dir() -> Path:
    """Folder of the weights inside the installed package (never the source tree)."""
    return Path(str(resources.files("srgan_cli") / "weights"))


def card_path(weights_path: Path) -> Path:
    name = weights_path.name.removesuffix(WEIGHTS_SUFFIX)
    return weights_path.with_name(name + ".json")


def _foreign(path: Path) -> Path:
    """``resolve`` for a file that is not ours: a TF checkpoint's ``.index``, or the file."""
    from srgan_cli.modelfile.tfckpt import INDEX_SUFFIX, checkpoint_prefix

    prefix = checkpoint_prefix(path)
    if prefix is not None:
        return Path(str(prefix) + INDEX_SUFFIX)
    if not path.is_file():
        raise WeightsError(f"weights not found: {path}")
    return path


def is_ours(path: Path) -> bool:
    """A ``.weights.h5`` with a card (ours); anything else is a foreign file to import."""
    return path.name.endswith(WEIGHTS_SUFFIX)


def resolve(model: str | None = None, weights: str | Path | None = None) -> Path:
    """Path of the weights for ``--model`` or ``--weights``; one-line error if missing.

    ``weights`` may also be a foreign model file (``.pth``, ``.safetensors``...) or a TF
    checkpoint, given by its prefix or its ``.index``: the ``.index`` file is returned (a
    real file, so it can be hashed and compared like any other).
    """
    if weights is not None:
        path = Path(weights)
        if not is_ours(path):  # ours stays numpy-free: the worker client resolves it
            return _foreign(path)
    else:
        name = model or SINGLE_DEFAULT
        if name == AUTO_MODEL:
            raise WeightsError("auto is two models: load it with srgan_cli.load_model()")
        if name not in MODEL_NAMES:
            raise WeightsError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
        path = shipped_weights_dir() / f"{name}{WEIGHTS_SUFFIX}"
    if not path.is_file():
        raise WeightsError(f"weights not found: {path}")
    if not card_path(path).is_file():
        raise WeightsError(f"weights {path} have no card {card_path(path).name}")
    return path


def is_auto(model: str | None, weights: str | Path | None) -> bool:
    """Whether these options ask for ``auto`` (the default: no --model, no --weights)."""
    return weights is None and (model or DEFAULT_MODEL) == AUTO_MODEL


def resolve_all(model: str | None = None, weights: str | Path | None = None) -> list[Path]:
    """Every weights file these options load: both members for ``auto``, else ``resolve``'s."""
    if is_auto(model, weights):
        return [resolve(name) for name in AUTO_MEMBERS]
    return [resolve(model, weights)]


SETTLED_S = 2.0
"""Age (since its last write) from which a file's digest is remembered: past the coarsest
common timestamp step (FAT's 2 s, ext3's 1 s), so any later rewrite moves its mtime."""


def sha256_of(path: Path) -> str:
    """sha256 of the file's bytes, remembered for this process while its (device, inode,
    size, mtime, ctime) stay the same: one run asks for it more than once (a foreign file's
    card, then its cached conversion when the model loads; a worker on every call), and
    these files are tens of megabytes. A file written in the last ``SETTLED_S`` is hashed
    every time, since a rewrite within one timestamp step would leave its stat unchanged."""
    signature = _settled_signature(path)
    if signature is None:
        return _hash_file(path)
    return _remembered_sha256(os.fspath(path), signature)


def _settled_signature(path: Path) -> tuple[int, ...] | None:
    """What tells this file's versions apart, or None while it is too new to trust that.
    Its age is its ctime's too: ``cp -p``, tar and ``os.utime`` date a file's mtime back,
    but not its ctime, the last write's time, which only ticks every few ms on many kernels."""
    info = os.stat(path)
    written = max(info.st_mtime_ns, info.st_ctime_ns)
    if time.time_ns() - written < SETTLED_S * 1e9:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


@functools.lru_cache(maxsize=64)
def _remembered_sha256(path: str, signature: tuple[int, ...]) -> str:
    """``_hash_file`` per (path, signature): a changed file has a new signature, so a new entry."""
    return _hash_file(Path(path))


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path) -> WeightCard:
    """Read the card and check the file's sha256 against it."""
    card = WeightCard.read(card_path(path))
    actual = sha256_of(path)
    if actual != card.sha256:
        raise WeightsError(f"{path.name}: sha256 {actual[:12]}... does not match its card")
    return card


def card_scale(card: WeightCard) -> int:
    """The scale of a card's model, without numpy (``spec_of(card).scale``): our own
    SRResNet cards, which carry no ``arch``, are x4."""
    from srgan_cli import SCALE

    return int(card.architecture["scale"]) if "arch" in card.architecture else SCALE


def card_arch(card: WeightCard) -> str:
    """The architecture of a card's model, without numpy (``spec_of(card).arch``)."""
    return str(card.architecture.get("arch", OWN_ARCH))


def spec_of(card: WeightCard) -> ModelSpec:
    """The card's architecture as a ``ModelSpec``; a card without ``arch`` is our SRResNet."""
    from types import SimpleNamespace

    from srgan_cli.archs import ModelSpec, srresnet

    if "arch" in card.architecture:
        return ModelSpec.from_dict(card.architecture)
    defaults = {"blocks": 16, "channels": 64, "batch_norm": False}  # GeneratorConfig's
    return srresnet.spec_for(SimpleNamespace(**{**defaults, **card.architecture}))


def card_for(path: Path) -> WeightCard:
    """The card of ``path`` (from ``resolve``) without building a model: ours verified, a
    foreign file's converted copy's when cached, else one made from the file's tensor names
    and shapes (numpy only, except a TF checkpoint, which needs TensorFlow to be read). A
    file that is not a model fails here (``ModelFileError``, exit 2)."""
    if is_ours(path):
        return verify(path)
    from srgan_cli import importer

    converted = importer.cache_path(path)
    if card_path(converted).is_file():
        return named_for(WeightCard.read(card_path(converted)), path)
    spec = importer.inspect(path)
    return WeightCard(importer.default_name(path), spec.to_dict(), sha256="")


def named_for(card: WeightCard, path: Path) -> WeightCard:
    """``card`` naming the file ``path`` it was loaded for. A foreign file's conversion is
    cached by content, so a renamed copy finds the card its first name wrote; reports and
    ``info`` should name the file the user gave (ours are named by their card)."""
    if is_ours(path) or not card.source:
        return card
    from srgan_cli import importer

    source = {**card.source, "file": path.name}
    return WeightCard(**{**vars(card), "name": importer.default_name(path), "source": source})


def model_spec(path: Path) -> ModelSpec:
    """What ``path`` (from ``resolve``) holds: architecture, scale... (see ``card_for``)."""
    return spec_of(card_for(path))


def load_generator(path: Path, dtype_policy: str | None = None):
    """Build the generator its card describes and load the verified weights into it.

    A foreign file (see ``resolve``) is converted once into the user's cache (``importer``);
    later calls load the cached ``.weights.h5`` like a shipped model. Usually where
    TensorFlow first loads, so its start-up notices are kept off stderr here
    (``tfstartup``), for the CLI and the library alike.
    """
    from srgan_cli.tfstartup import quiet_tensorflow_startup

    if is_ours(path):
        card = verify(path)
    else:
        from srgan_cli import importer

        with quiet_tensorflow_startup():  # a TF checkpoint is read with TensorFlow
            path, card = importer.converted(path)  # verified or just written: not hashed again
    spec = spec_of(card)
    with quiet_tensorflow_startup():
        if spec.arch == OWN_ARCH:
            from srgan_cli.model import GeneratorConfig, build_generator

            cfg = GeneratorConfig.from_dict(card.architecture)
            model = build_generator(
                cfg.blocks, cfg.channels, cfg.batch_norm, card.name, dtype_policy
            )
        else:
            from srgan_cli.archs import arch_named
            from srgan_cli.model import policy_scope

            cfg = spec
            with policy_scope(dtype_policy):
                model = arch_named(spec.arch).build(spec)
        try:
            model.load_weights(path)
        except (ValueError, OSError, KeyError) as err:
            raise WeightsError(f"{path.name} does not fit architecture {cfg}: {err}") from err
    return model, card


def record_metrics(weights_path: Path, metrics: dict[str, Any]) -> WeightCard:
    """Merge benchmark scores into a model's card (the weights and their sha256 are kept)."""
    card = verify(weights_path)
    card.metrics = {**card.metrics, **metrics}
    card.write(card_path(weights_path))
    return card


def export(model, card: WeightCard, out_dir: Path) -> Path:
    """Save ``model``'s weights as ``<card.name>.weights.h5`` + card with its sha256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{card.name}{WEIGHTS_SUFFIX}"
    model.save_weights(path)
    card.sha256 = sha256_of(path)
    card.write(card_path(path))
    return path
