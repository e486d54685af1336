"""Shared fixtures: tiny synthetic images and a tiny generator's weights (built once)."""

from __future__ import annotations

import ast
import io
import pickle
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image


def make_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (12, 10), seed: int = 0):
    """Write a random image of ``size`` (width, height) in ``mode`` to ``path``; return path.

    RGBA gets a real mask (opaque left half, a ramp on the right) so alpha handling shows.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "RGB":
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif mode == "RGBA":
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        alpha = np.full((height, width), 255, dtype=np.uint8)
        alpha[:, width // 2 :] = np.linspace(0, 255, width - width // 2, dtype=np.uint8)
        array = np.dstack((rgb, alpha))
    elif mode == "L":
        array = rng.integers(0, 256, (height, width), dtype=np.uint8)
    else:
        raise ValueError(f"unsupported test mode {mode}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


MIXED_MODELS: dict[str, str] = {
    "q60.jpg": "real",
    "q90.jpg": "real",
    "q95.jpg": "srgan",
    "clean.png": "srgan",
    "lossy.webp": "real",
    "lossless.webp": "srgan",
}
"""The files ``make_mixed_folder`` writes and the model ``--model auto`` gives each (JPEGs
at quality <= 90 and lossy WebPs get real)."""


def make_mixed_folder(folder: Path, size: tuple[int, int] = (16, 16)) -> Path:
    """One random photo saved as each of ``MIXED_MODELS``' files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(30)
    photo = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    photo.save(folder / "clean.png")
    for quality in (60, 90, 95):
        photo.save(folder / f"q{quality}.jpg", quality=quality)
    photo.save(folder / "lossy.webp", quality=80)
    photo.save(folder / "lossless.webp", lossless=True)
    return folder


@pytest.fixture
def rgb_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "rgb.png", "RGB", seed=1)


@pytest.fixture
def rgba_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "rgba.png", "RGBA", seed=2)


@pytest.fixture
def gray_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "gray.png", "L", seed=3)


@pytest.fixture
def corrupt_png(tmp_path: Path) -> Path:
    """A file with a PNG name and signature whose data is cut short."""
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block, 8-channel generator with a fixed seed, exported with its card."""
    keras = pytest.importorskip("keras")
    from srgan_cli.model import GeneratorConfig, build_generator
    from srgan_cli.weights import WeightCard, export

    keras.utils.set_random_seed(1234)
    model = build_generator(blocks=2, channels=8)
    card = WeightCard(
        name="tiny",
        architecture=GeneratorConfig(2, 8, False).to_dict(),
        sha256="",
        training={"note": "test"},
    )
    return export(model, card, tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session", autouse=True)
def private_worker_dir():
    """Point the worker's runtime directory at an empty private folder for the whole run, so
    no test is served by (or disturbs) a worker the developer has running."""
    import os
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="srgan-test-run-")  # short: socket paths are limited
    saved = {name: os.environ.get(name) for name in ("XDG_RUNTIME_DIR", "SRGAN_WORKER")}
    os.environ["XDG_RUNTIME_DIR"] = folder
    os.environ.pop("SRGAN_WORKER", None)
    yield Path(folder)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


def modules_loaded_by(imports: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has loaded after ``import <imports>``.

    A fresh process, because this test process has long imported numpy and TensorFlow.
    """
    code = f"import sys, {imports}; print(sorted(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout)


@pytest.fixture
def run(tiny_weights):
    """``srgan upscale ... --weights <tiny>`` in-process; returns click's Result."""
    from srgan_cli.cli import main

    def invoke(*args: object, input: bytes | None = None):
        argv = ["upscale", *map(str, args), "--weights", str(tiny_weights)]
        return CliRunner().invoke(main, argv, input=input, catch_exceptions=False)

    return invoke


def seed_variables(blocks: int = 2, channels: int = 8, stages: int = 2, seed: int = 0):
    """Random weights with the seed generator's TF1 variable names (``generator/...``).

    Convs are He-scaled so activations stay O(1); BatchNorm statistics are far from the
    identity (means, variances and betas all random), one scope also has a gamma.
    """
    rng = np.random.default_rng(seed)
    c, unit = channels, "generator/generator_unit/"
    out: dict[str, np.ndarray] = {}

    def conv(scope: str, k: int, cin: int, cout: int, bias: bool) -> None:
        std = np.sqrt(2.0 / (k * k * cin))
        out[f"{unit}{scope}/Conv/weights"] = rng.normal(0, std, (k, k, cin, cout))
        if bias:
            out[f"{unit}{scope}/Conv/biases"] = rng.normal(0, 0.1, cout)

    def bn(scope: str, gamma: bool = False) -> None:
        out[f"{unit}{scope}/beta"] = rng.normal(0, 0.2, c)
        out[f"{unit}{scope}/moving_mean"] = rng.normal(0, 0.3, c)
        out[f"{unit}{scope}/moving_variance"] = rng.uniform(0.3, 3.0, c)
        if gamma:
            out[f"{unit}{scope}/gamma"] = rng.uniform(0.5, 1.5, c)

    def prelu(scope: str) -> None:
        out[f"{unit}{scope}/Prelu/alpha"] = rng.uniform(0.0, 0.4, c)

    conv("input_stage/conv", 9, 3, c, True)
    prelu("input_stage")
    for i in range(1, blocks + 1):
        conv(f"resblock_{i}/conv_1", 3, c, c, False)
        bn(f"resblock_{i}/BatchNorm")
        prelu(f"resblock_{i}")
        conv(f"resblock_{i}/conv_2", 3, c, c, False)
        bn(f"resblock_{i}/BatchNorm_1")
    conv("resblock_output/conv", 3, c, c, False)
    bn("resblock_output/BatchNorm", gamma=True)
    for k in range(1, stages + 1):
        conv(f"subpixelconv_stage{k}/conv", 3, c, 4 * c, True)
        prelu(f"subpixelconv_stage{k}")
    conv("output_stage/conv", 9, c, 3, True)
    return {name: value.astype(np.float32) for name, value in out.items()}


def write_tf1_checkpoint(prefix: Path, variables: dict[str, np.ndarray]) -> Path:
    """Save ``variables`` the way the seed did: TF1 variables and a ``tf.compat.v1`` Saver in
    graph mode (``prefix.index`` + ``prefix.data-00000-of-00001``), with Adam slots, a
    ``global_step`` and a discriminator variable that a reader must ignore."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default():
        saved = [v1.get_variable(name, initializer=value) for name, value in variables.items()]
        first = next(iter(variables))
        saved.append(v1.get_variable(first + "/Adam", initializer=variables[first] * 0 + 1))
        saved.append(
            v1.get_variable("discriminator/conv/weights", initializer=np.ones(3, np.float32))
        )
        saved.append(v1.get_variable("global_step", initializer=np.int64(7)))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver(saved).save(session, str(prefix), write_meta_graph=False)
    return prefix


@pytest.fixture(scope="session")
def seed_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """(prefix, variables) of a 2-block, 8-channel x4 seed generator saved as a TF1 checkpoint."""
    variables = seed_variables()
    prefix = tmp_path_factory.mktemp("seed") / "model"
    return write_tf1_checkpoint(prefix, variables), variables


def _torch_conv(rng: np.random.Generator, state: dict, key: str, cout: int, cin: int) -> None:
    """A PyTorch-layout (OIHW) 3x3 conv with small random weights, as ``key.weight/.bias``."""
    std = 1.0 / np.sqrt(9 * cin)
    state[f"{key}.weight"] = rng.normal(0, std, (cout, cin, 3, 3)).astype(np.float32)
    state[f"{key}.bias"] = rng.normal(0, 0.02, cout).astype(np.float32)


def rrdbnet_x2_state(num_block: int = 1, nf: int = 8, gc: int = 4, seed: int = 0) -> dict:
    """A tiny BasicSR RRDBNet x2 (Real-ESRGAN x2plus's shape: pixel-unshuffle 2 in, two x2
    stages), random weights, PyTorch key names and layouts."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    _torch_conv(rng, state, "conv_first", nf, 12)
    for b in range(num_block):
        for r in range(1, 4):
            for c in range(1, 6):
                cout = nf if c == 5 else gc
                _torch_conv(rng, state, f"body.{b}.rdb{r}.conv{c}", cout, nf + (c - 1) * gc)
    for key in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        _torch_conv(rng, state, key, nf, nf)
    _torch_conv(rng, state, "conv_last", 3, nf)
    state["conv_last.bias"] += 0.5  # mid-grey output, detail well inside [0, 1]
    return state


def compact_x1_state(nf: int = 8, num_conv: int = 2, seed: int = 0) -> dict:
    """A tiny SRVGGNetCompact x1 (Real-ESRGAN's ``body.N`` keys; PReLU slopes), random."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    _torch_conv(rng, state, "body.0", nf, 3)
    for i in range(num_conv + 1):
        state[f"body.{2 * i + 1}.weight"] = rng.uniform(0, 0.3, nf).astype(np.float32)
        if i < num_conv:
            _torch_conv(rng, state, f"body.{2 * i + 2}", nf, nf)
    _torch_conv(rng, state, f"body.{2 * num_conv + 2}", 3, nf)
    return state


def save_safetensors(path: Path, state: dict) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


@pytest.fixture(scope="session")
def rrdb_x2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_safetensors(
        tmp_path_factory.mktemp("foreign") / "rrdb_x2.safetensors", rrdbnet_x2_state()
    )


@pytest.fixture(scope="session")
def compact_x1_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_safetensors(
        tmp_path_factory.mktemp("foreign") / "compact_x1.safetensors", compact_x1_state()
    )


@pytest.fixture(scope="session", autouse=True)
def private_model_cache(tmp_path_factory: pytest.TempPathFactory):
    """Converted foreign models go to a cache private to the test session (workers and Ray
    actors inherit it), never to the developer's ~/.cache."""
    import os

    folder = tmp_path_factory.mktemp("model-cache")
    saved = os.environ.get("SRGAN_CACHE_DIR")
    os.environ["SRGAN_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("SRGAN_CACHE_DIR", None)
    else:
        os.environ["SRGAN_CACHE_DIR"] = saved


def settled_copy(source: Path, target: Path) -> Path:
    """A copy of ``source``, new to this process (a new inode), once it is old enough on disk
    for ``weights.sha256_of`` to remember its digest: its ctime cannot be dated back, so this
    waits ``weights.SETTLED_S``."""
    import shutil
    import time

    from srgan_cli.weights import SETTLED_S

    shutil.copyfile(source, target)
    age_s = time.time() - target.stat().st_ctime
    time.sleep(max(0.0, SETTLED_S - age_s) + 0.05)
    return target


@pytest.fixture
def hash_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """File name -> how often ``srgan_cli.weights`` opened it to hash it: ``open`` in that
    module (it opens files only to hash them) wrapped by a counter around the real one."""
    from srgan_cli import weights

    counts: Counter[str] = Counter()

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        counts[Path(file).name] += 1
        return open(file, *args, **kwargs)

    monkeypatch.setattr(weights, "open", counting_open, raising=False)
    return counts


class Global:
    """A global pickled by name (``torch._utils._rebuild_tensor_v2``...), never imported."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.__name__ = module, name

    def __call__(self, *args):  # save_reduce asks for a callable
        raise AssertionError("a pickling stand-in, never called")


class Foreign:
    """An object of a class no model reader allows (Lightning's AttributeDict, omegaconf's
    DictConfig, a loss module), pickled as protocol 2 pickles a dict subclass instance:
    ``copyreg.__newobj__`` of the class, its items, then its ``__dict__`` state."""

    def __init__(self, module: str, name: str, items: dict, state: dict | None = None) -> None:
        self.cls, self.items, self.state = Global(module, name), items, state


class _Storage:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, array


class _TorchPickler(pickle._Pickler):
    """The pure-Python pickler, writing numpy arrays as ``torch.save`` writes float tensors."""

    def __init__(self, file: io.BytesIO, storages: dict[str, bytes]) -> None:
        super().__init__(file, protocol=2)
        self.storages = storages

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.__name__}\n".encode())
        elif isinstance(obj, np.ndarray):
            array = np.ascontiguousarray(obj, "<f4")
            storage = _Storage(str(len(self.storages)), array)
            self.storages[storage.key] = array.tobytes()
            strides = tuple(s // 4 for s in array.strides)
            args = (storage, 0, array.shape, strides, False, {})
            self.save_reduce(Global("torch._utils", "_rebuild_tensor_v2"), args)
        elif isinstance(obj, Foreign):
            items = iter(obj.items.items())
            newobj = Global("copyreg", "__newobj__")
            self.save_reduce(newobj, (obj.cls,), state=obj.state, dictitems=items)
        else:
            super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", Global("torch", "FloatStorage"), obj.key, "cpu", obj.array.size)
        return None


def torch_save(path: Path, obj) -> Path:
    """Write ``obj`` (dicts, lists, numbers, numpy arrays as float tensors, ``Foreign``
    objects) laid out as ``torch.save`` does (zip format), without torch."""
    storages: dict[str, bytes] = {}
    pickled = io.BytesIO()
    _TorchPickler(pickled, storages).dump(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
    return path
