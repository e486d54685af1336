"""Write tests/fixtures/archs/: foreign model files, a random input, the reference output.

Run by hand (needs torch 2.x CPU, spandrel, safetensors); CI only reads what this writes:

    PYTHONPATH=$PWD/src python tests/make_arch_fixtures.py [--check] [--no-real]

``--check`` writes nothing: it rebuilds every reference and compares it with the committed
fixtures and with our import of them; ``--no-real`` skips the real-size networks.

References, written by others:
- RRDBNet (all three key layouts) and SRVGGNetCompact: spandrel's architecture code
  (``spandrel.architectures.ESRGAN`` = old-arch ESRGAN RRDBNet, ``...Compact`` = Real-ESRGAN's
  SRVGGNetCompact), imported without spandrel's top-level package (which needs torchvision).
  spandrel's RRDBNet fixes the growth at 32; ``_growth`` overrides it so the fixtures stay
  small. The BasicSR and BSRGAN files are renamed from spandrel's old layout and checked to
  map back with spandrel's own ``_to_old_arch``.
- MSRResNet: BasicSR's own ``basicsr/archs/srresnet_arch.py`` and ``arch_util.py``, read from
  the published ``basicsr`` sdist (``pip download``, no dependencies; or a checkout named by
  ``$BASICSR_SRC``) and run with inert stand-ins for the imports MSRResNet never uses.

Besides the small fixtures it converts real-size networks (RRDBNet 23 blocks / 64 feat, the
SRVGG v3 sizes, MSRResNet 16 blocks / 64 feat) and prints the max abs difference.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).parent / "fixtures" / "archs"
LR_SHAPE = (4, 8)  # height, width of the random input: a multiple of 4 for RRDBNet x1


def _spandrel(module: str) -> types.ModuleType:
    """Import ``spandrel.<module>`` without running spandrel/__init__ (torchvision)."""
    if "spandrel" not in sys.modules:
        spec = importlib.util.find_spec("spandrel")
        assert spec is not None and spec.submodule_search_locations, "pip install spandrel"
        package = types.ModuleType("spandrel")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["spandrel"] = package
    return importlib.import_module(f"spandrel.{module}")


# ----- MSRResNet: BasicSR's own source, loaded from its published sdist -----

BASICSR = "basicsr==1.4.2"


def _basicsr_source() -> Path:
    """BasicSR's package directory: $BASICSR_SRC, else its sdist fetched with pip (no deps)."""
    if os.environ.get("BASICSR_SRC"):
        return Path(os.environ["BASICSR_SRC"])
    scratch = Path(tempfile.mkdtemp(prefix="basicsr-"))
    pip = [sys.executable, "-m", "pip", "download", BASICSR, "--no-deps", "-q", "-d"]
    subprocess.run(
        [*pip, str(scratch), "--no-binary", ":all:"],
        check=True,
    )
    with tarfile.open(next(scratch.glob("basicsr-*.tar.gz"))) as sdist:
        sdist.extractall(scratch, filter="data")
    return next(scratch.glob("basicsr-*/basicsr"))


def _stand_in(name: str, **attrs: object) -> None:
    """An inert module for an import BasicSR's arch files make but MSRResNet never uses
    (deformable convs, logging, the registry, torchvision)."""
    if name not in sys.modules:
        sys.modules[name] = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(sys.modules[name], key, value)


def _basicsr_msrresnet() -> type:
    """``basicsr.archs.srresnet_arch.MSRResNet`` as BasicSR wrote it (with ``arch_util``'s
    ``ResidualBlockNoBN``), without importing BasicSR's package (torchvision, cv2...)."""
    if "basicsr.archs.srresnet_arch" in sys.modules:
        return sys.modules["basicsr.archs.srresnet_arch"].MSRResNet
    root = _basicsr_source()
    registry = types.SimpleNamespace(register=lambda *a, **k: lambda cls: cls)
    if importlib.util.find_spec("torchvision") is None:
        _stand_in("torchvision")  # arch_util imports it at the top, for DCN only
    _stand_in("basicsr", __path__=[str(root)])
    _stand_in("basicsr.archs", __path__=[str(root / "archs")])
    _stand_in("basicsr.ops.dcn", ModulatedDeformConvPack=nn.Module, modulated_deform_conv=None)
    _stand_in("basicsr.utils", get_root_logger=None)
    _stand_in("basicsr.utils.registry", ARCH_REGISTRY=registry)
    for name in ("arch_util", "srresnet_arch"):
        spec = importlib.util.spec_from_file_location(
            f"basicsr.archs.{name}", root / f"archs/{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["basicsr.archs.srresnet_arch"].MSRResNet


# ----- reference networks with random weights -----


@contextlib.contextmanager
def _growth(growth: int) -> Iterator[None]:
    """Let spandrel's RRDBNet (growth fixed at 32) build dense blocks of ``growth``."""
    block = _spandrel("architectures.__arch_helpers.block")
    original = block.RRDB
    block.RRDB = lambda *args, **kwargs: original(*args, **{**kwargs, "gc": growth})
    try:
        yield
    finally:
        block.RRDB = original


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Reproducible random weights; PReLU slopes spread so a channel mix-up shows."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
        elif isinstance(module, nn.PReLU):
            nn.init.uniform_(module.weight, 0.0, 0.5)
    return model.eval()


def rrdbnet(
    scale: int, num_feat: int, num_block: int, growth: int, seed: int = 0, unshuffle: bool = True
):
    """(spandrel old-arch RRDBNet, its BasicSR-layout state dict), x1 to x8.

    Real-ESRGAN's x2 and x1 pixel-unshuffle the input and keep two up stages; BSRGAN's and
    old ESRGAN x2 files (``unshuffle=False``) have a single up stage instead.
    """
    esrgan = _spandrel("architectures.ESRGAN")
    unshuffle = {1: 4, 2: 2}.get(scale, 1) if unshuffle else 1
    with _growth(growth):
        model = esrgan.ESRGAN(
            in_nc=3 * unshuffle**2,
            out_nc=3,
            num_filters=num_feat,
            num_blocks=num_block,
            scale=scale * unshuffle,
            shuffle_factor=unshuffle if unshuffle > 1 else None,
        )
    _randomize(model, seed)
    old = model.state_dict()
    basicsr = old_to_basicsr(old, num_block)
    back = esrgan._to_old_arch(dict(basicsr))
    assert list(back) == list(old), "renamed keys disagree with spandrel's mapping"
    return model, basicsr


def old_to_basicsr(old: dict, num_block: int) -> OrderedDict:
    """spandrel's new->old key mapping, inverted (model.N -> conv_first, body, conv_up...)."""
    n = 1 + max(int(k.split(".")[1]) for k in old)  # Sequential length
    n_up = (n - 5) // 3
    names = {"0": "conv_first", f"1.sub.{num_block}": "conv_body"}
    names.update({str(3 * i): f"conv_up{i}" for i in range(1, n_up + 1)})
    names.update({str(3 * n_up + 2): "conv_hr", str(3 * n_up + 4): "conv_last"})
    out = OrderedDict()
    for key, value in old.items():
        m = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key)
        if m:
            out["body.{}.rdb{}.conv{}.{}".format(*m.groups())] = value
            continue
        head, kind = key[len("model.") :].rsplit(".", 1)
        out[f"{names[head]}.{kind}"] = value
    return out


def basicsr_to_bsrgan(state: dict) -> OrderedDict:
    rename = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    out = OrderedDict()
    for key, value in state.items():
        head, kind = key.rsplit(".", 1)
        m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", head)
        if m:
            head = "RRDB_trunk.{}.RDB{}.conv{}".format(*m.groups())
        head = rename.get(head, re.sub(r"^conv_up(\d)$", r"upconv\1", head))
        out[f"{head}.{kind}"] = value
    return out


def basicsr_to_esrgan(state: dict) -> OrderedDict:
    return _spandrel("architectures.ESRGAN")._to_old_arch(dict(state))


def srvgg(scale: int, num_feat: int, num_conv: int, seed: int = 0):
    compact = _spandrel("architectures.Compact.__arch.SRVGG")
    model = compact.SRVGGNetCompact(num_feat=num_feat, num_conv=num_conv, upscale=scale)
    _randomize(model, seed)
    return model, model.state_dict()


def msrresnet(scale: int, num_feat: int, num_block: int, seed: int = 0):
    msrresnet_class = _basicsr_msrresnet()
    model = _randomize(msrresnet_class(num_feat=num_feat, num_block=num_block, upscale=scale), seed)
    return model, model.state_dict()


def reference(model: nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous())
    return y.permute(0, 2, 3, 1).numpy()


def keras_output(state: dict, x_nhwc: np.ndarray) -> tuple[np.ndarray, object]:
    """Our Keras twin's output for a state dict of torch tensors or numpy arrays."""
    from srgan_cli import archs

    numpy_state = {k: np.asarray(_float(v), dtype=np.float32) for k, v in state.items()}
    model, spec = archs.convert(numpy_state)
    return np.asarray(model(x_nhwc)), spec


def _float(value):
    return value.detach().float() if isinstance(value, torch.Tensor) else value


def rounded(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The model with every weight rounded to ``dtype`` (then computed in float32)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    return model


# ----- the fixtures -----


def _input(seed: int, shape: tuple[int, int] = LR_SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).random((1, *shape, 3), dtype=np.float32)


def _renamed(rename, scale: int, seed: int):
    """Old ESRGAN and BSRGAN x2 files have one up stage and no unshuffle."""
    model, state = rrdbnet(scale, **_small_rrdb(scale), seed=seed, unshuffle=False)
    return model, rename(state)


def _small_rrdb(scale: int) -> dict:
    # x4 files have two blocks, so each layout numbers blocks past 0 once
    return {"num_feat": 4, "num_block": 2 if scale == 4 else 1, "growth": 3}


F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16

# file name, how to save, dtype, (reference model, state dict)
FIXTURES = (
    ("rrdb_basicsr_x4.pth", "params_ema", F32, lambda: rrdbnet(4, **_small_rrdb(4), seed=4)),
    ("rrdb_basicsr_x2.safetensors", "plain", F32, lambda: rrdbnet(2, **_small_rrdb(2), seed=2)),
    ("rrdb_basicsr_x1.pth", "legacy", F32, lambda: rrdbnet(1, **_small_rrdb(1), seed=1)),
    ("rrdb_basicsr_x8.safetensors", "plain", F16, lambda: rrdbnet(8, **_small_rrdb(8), seed=8)),
    ("rrdb_esrgan_x4.pth", "plain", F32, lambda: _renamed(basicsr_to_esrgan, 4, 14)),
    ("rrdb_esrgan_x2.pth", "legacy", F32, lambda: _renamed(basicsr_to_esrgan, 2, 12)),
    ("rrdb_bsrgan_x4.safetensors", "plain", BF16, lambda: _renamed(basicsr_to_bsrgan, 4, 24)),
    ("rrdb_bsrgan_x2.pth", "module", F32, lambda: _renamed(basicsr_to_bsrgan, 2, 22)),
    ("srvgg_x4.pth", "params", F32, lambda: srvgg(4, 8, 3, seed=34)),
    ("srvgg_x2.safetensors", "plain", F32, lambda: srvgg(2, 8, 3, seed=32)),
    ("srvgg_x1.pth", "legacy", F16, lambda: srvgg(1, 8, 3, seed=31)),
    ("msrresnet_x4.pth", "params_ema", F32, lambda: msrresnet(4, 8, 2, seed=44)),
    ("msrresnet_x3.safetensors", "plain", F16, lambda: msrresnet(3, 8, 2, seed=43)),
    ("msrresnet_x2.pth", "model", F32, lambda: msrresnet(2, 8, 2, seed=42)),
)


def _save(path: Path, state: dict, fmt: str, dtype: torch.dtype) -> None:
    state = OrderedDict((k, v.detach().to(dtype).contiguous()) for k, v in state.items())
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(dict(state), str(path))
        return
    decoy = {"conv_first.weight": torch.zeros(1)}  # a reader that prefers it fails loudly
    wrapped = {
        "plain": state,
        "legacy": state,
        "params_ema": {"params": decoy, "params_ema": state},  # Real-ESRGAN release files
        "params": {"params": state},
        "module": {"state_dict": OrderedDict((f"module.{k}", v) for k, v in state.items())},
        "model": {"model": state, "epoch": 3},
    }[fmt]
    torch.save(wrapped, path, _use_new_zipfile_serialization=fmt != "legacy")


def write_fixtures() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (name, fmt, dtype, make) in enumerate(FIXTURES):
        model, state = make()
        path = OUT / name
        _save(path, state, fmt, dtype)
        rounded(model, dtype)
        x = _input(i)
        y = reference(model, x)
        np.savez_compressed(path.with_suffix(".npz"), x=x, y=y)
        mine, spec = keras_output(_rounded_state(state, dtype), x)
        diff = float(np.abs(mine - y).max())
        size = path.stat().st_size + path.with_suffix(".npz").stat().st_size
        print(f"{name:30s} {spec.describe():55s} max|diff| {diff:.2e}  {size / 1024:.1f} KiB")


def _rounded_state(state: dict, dtype: torch.dtype) -> dict:
    return {k: v.detach().to(dtype).float() for k, v in state.items()}


def real_size_checks() -> dict[str, float]:
    """Real hyper-parameters on a tiny image: the max abs difference per network."""
    cases = {
        "RRDBNet 23x64 x4 (BasicSR)": rrdbnet(4, 64, 23, 32),
        "RRDBNet 23x64 x2 (BasicSR)": rrdbnet(2, 64, 23, 32),
        "RRDBNet 23x64 x1 (BasicSR)": rrdbnet(1, 64, 23, 32),
        "SRVGGNetCompact 64f 32c x4": srvgg(4, 64, 32),
        "SRVGGNetCompact 64f 16c x4": srvgg(4, 64, 16),
        "MSRResNet 64f 16b x4": msrresnet(4, 64, 16),
    }
    diffs = {}
    for label, (model, state) in cases.items():
        x = _input(99, (8, 12))
        y = reference(model, x)
        mine, _ = keras_output(state, x)
        diffs[label] = float(np.abs(mine - y).max())
        print(f"{label:30s} max|diff| {diffs[label]:.2e}  (output std {y.std():.3f})")
    return diffs


def check_fixtures() -> dict[str, tuple[float, float]]:
    """Rebuild each committed fixture's reference and compare, writing nothing.

    Per file: the reference's output now against the committed one (the references are the
    code that wrote the fixtures), and our import of the committed file against it.
    """
    from srgan_cli.modelfile import read_state

    diffs = {}
    for i, (name, _fmt, dtype, make) in enumerate(FIXTURES):
        model, _state = make()
        committed = np.load((OUT / name).with_suffix(".npz"))
        x = _input(i)
        assert np.array_equal(x, committed["x"]), name
        y = reference(rounded(model, dtype), x)
        mine, spec = keras_output(read_state(OUT / name), x)
        diffs[name] = (float(np.abs(y - committed["y"]).max()), float(np.abs(mine - y).max()))
        print(
            f"{name:30s} {spec.describe():55s} reference vs committed {diffs[name][0]:.2e}, "
            f"ours vs reference {diffs[name][1]:.2e}"
        )
    return diffs


if __name__ == "__main__":
    torch.set_num_threads(1)
    if "--check" in sys.argv:
        check_fixtures()
    else:
        write_fixtures()
    if "--no-real" not in sys.argv:
        real_size_checks()
