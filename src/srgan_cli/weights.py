"""Find, verify and load generator weights shipped in the wheel (``srgan_cli/weights``).

Each model is ``<name>.weights.h5`` plus a JSON card (architecture, training, metrics,
sha256). Loading refuses a file whose hash or architecture does not match its card, so the
CLI can never silently run with wrong or random weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from srgan_cli.errors import WeightsError

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

    @classmethod
    def read(cls, path: Path) -> WeightCard:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as err:
            raise WeightsError(f"cannot read weight card {path}: {err}") from err

    def write(self, path: Path) -> None:
        text = json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"
        path.write_text(text, encoding="utf-8")


def shipped_weights_dir() -> Path:
    """Folder of the weights inside the installed package (never the source tree)."""
    return Path(str(resources.files("srgan_cli") / "weights"))


def card_path(weights_path: Path) -> Path:
    name = weights_path.name.removesuffix(WEIGHTS_SUFFIX)
    return weights_path.with_name(name + ".json")


def resolve(model: str | None = None, weights: str | Path | None = None) -> Path:
    """Path of the weights for ``--model`` or ``--weights``; one-line error if missing."""
    if weights is not None:
        path = Path(weights)
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


def sha256_of(path: Path) -> str:
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


def load_generator(path: Path, dtype_policy: str | None = None):
    """Build the generator its card describes and load the verified weights into it.

    Usually where TensorFlow first loads, so its start-up notices are kept off stderr here
    (``tfstartup``), for the CLI and the library alike.
    """
    from srgan_cli.tfstartup import quiet_tensorflow_startup

    card = verify(path)
    with quiet_tensorflow_startup():
        from srgan_cli.model import GeneratorConfig, build_generator

        cfg = GeneratorConfig.from_dict(card.architecture)
        model = build_generator(cfg.blocks, cfg.channels, cfg.batch_norm, card.name, dtype_policy)
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
