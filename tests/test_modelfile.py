"""Model file readers: torch zip and legacy pickles, safetensors, wrappers, refusals, damage."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from conftest import Foreign, compact_x1_state, torch_save

from srgan_cli.errors import ModelFileError
from srgan_cli.modelfile import read_state, torchpickle, unwrap

FIXTURES = Path(__file__).parent / "fixtures" / "archs"


class _Evil:
    """Unpickling this runs a shell command -- unless the reader refuses ``posix.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_zip(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    """A file laid out as ``torch.save`` writes it (zip format)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def _legacy(path: Path, pickled: bytes) -> Path:
    head = b"".join(
        pickle.dumps(obj, protocol=2)
        for obj in (torchpickle.LEGACY_MAGIC, torchpickle.LEGACY_PROTOCOL, {"little_endian": True})
    )
    path.write_bytes(head + pickled + pickle.dumps([], protocol=2))
    return path


def _one_line_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as err:
        read_state(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(path.name + ": ")
    return msg


def test_reads_every_format_as_float32():
    for name, wanted in (
        ("rrdb_basicsr_x4.pth", "conv_first.weight"),  # zip; params_ema beside a decoy params
        ("rrdb_basicsr_x1.pth", "conv_first.weight"),  # legacy pickle
        ("srvgg_x1.pth", "body.0.weight"),  # legacy, fp16 storages
        ("rrdb_bsrgan_x2.pth", "RRDB_trunk.0.RDB1.conv1.weight"),  # state_dict + module.
        ("msrresnet_x2.pth", "conv_first.weight"),  # {"model": ..., "epoch": 3}
        ("rrdb_basicsr_x8.safetensors", "conv_up3.weight"),  # fp16
        ("rrdb_bsrgan_x4.safetensors", "trunk_conv.weight"),  # bf16
    ):
        state = read_state(FIXTURES / name)
        assert wanted in state, name
        assert all(v.dtype == np.float32 for v in state.values()), name
        assert not any(k.startswith("module.") for k in state), name
        assert np.abs(state[wanted]).max() > 0, name  # not the zero decoy


def test_bf16_decoding_is_exact():
    """bf16 is the top half of a float32: shifting the bits back loses nothing."""
    values = np.array([1.0, -2.5, 3.140625, 1e-3], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    header = b'{"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}'
    raw = len(header).to_bytes(8, "little") + header + bits.tobytes()
    from srgan_cli.modelfile import safetensor

    expected = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(safetensor.load(raw)["w"], expected)
    assert abs(float(expected[2]) - 3.140625) == 0


def test_unwrap_prefers_params_ema_and_strips_module():
    a, b = np.ones(2, np.float32), np.zeros(2, np.float32)
    assert unwrap({"params": {"x": b}, "params_ema": {"x": a}})["x"] is a
    assert list(unwrap({"only": {"module.conv.weight": a}})) == ["conv.weight"]
    assert list(unwrap({"net": {"w": a}, "step": 7})) == ["w"]
    with pytest.raises(ModelFileError, match=r"no tensors found .*keys epoch, lr"):
        unwrap({"epoch": 3, "lr": 0.1})
    # plain PyTorch training scripts, and spandrel's spelling of Real-ESRGAN's key
    assert unwrap({"model_state_dict": {"w": a}, "optimizer_state_dict": {"v": b}})["w"] is a
    assert unwrap({"params-ema": {"x": a}, "params": {"x": b}})["x"] is a


def _lightning_checkpoint(state: dict) -> dict:
    """What Lightning's ``Trainer.save_checkpoint`` writes: the module's tensors under
    ``state_dict``, plus optimizer and scheduler states, callbacks, and hyper-parameters that
    are often objects of Lightning's or omegaconf's classes."""
    first = next(iter(state.values()))
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in state.items()},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'psnr'}": {"best_model_score": first[0, 0]}},
        "optimizer_states": [
            {"state": {0: {"step": first[0, 0, 0], "exp_avg": first}}, "param_groups": []}
        ],
        "lr_schedulers": [{"milestones": {400: 1}, "gamma": 0.5}],
        "hparams_name": "kwargs",
        "hyper_parameters": Foreign(
            "lightning.fabric.utilities.data", "AttributeDict", {"lr": 2e-4}, {"x": 1}
        ),
        "hyper_parameters_type": Foreign("omegaconf.dictconfig", "DictConfig", {}),
    }


def test_lightning_checkpoint_reads_its_state_dict(tmp_path: Path):
    """Objects outside the allow-list stay inert stand-ins (never imported or called): a
    file is refused for one only when the weights need it."""
    state = compact_x1_state()
    path = torch_save(tmp_path / "epoch=3-step=1200.ckpt", _lightning_checkpoint(state))
    got = read_state(path)
    assert list(got) == [f"model.{k}" for k in state]
    for key, value in state.items():
        np.testing.assert_array_equal(got[f"model.{key}"], value)


def test_object_among_the_weights_is_refused_by_name(tmp_path: Path):
    state = {**compact_x1_state(), "body.2.bias": Foreign("mylib.layers", "Quantized", {})}
    msg = _one_line_error(torch_save(tmp_path / "q.pth", {"params": state}))
    assert "refusing mylib.layers.Quantized" in msg


def test_torchscript_archive_is_named(tmp_path: Path):
    """A ``torch.jit.save`` file holds code as well as a pickle: say so, and what to do."""
    path = tmp_path / "traced.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("traced/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("traced/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("traced/code/__torch__/net.py", "def forward(self, x): ...")
    msg = _one_line_error(path)
    assert "TorchScript" in msg and "state_dict" in msg


@pytest.mark.parametrize("layout", [_torch_zip, _legacy])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, layout):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(OrderedDict(w=_Evil(marker)), protocol=2)
    msg = _one_line_error(layout(tmp_path / "evil.pth", payload))
    assert f"refusing {os.system.__module__}.system" in msg
    assert not marker.exists()
    pickle.loads(payload)  # control: plain pickle would have run the command
    assert marker.exists()


def test_refuses_any_global_outside_the_allow_list(tmp_path: Path):
    payload = pickle.dumps({"w": io.BytesIO}, protocol=2)  # a harmless class, still refused
    assert "refusing _io.BytesIO" in _one_line_error(_torch_zip(tmp_path / "x.pth", payload))


def _tensor_pickle(storage: str, numel: int, size: tuple, stride: tuple) -> bytes:
    """Protocol-2 opcodes of ``{"w": <tensor>}`` as torch writes them, spelled out by hand
    (pickling stand-in classes would need torch's real globals)."""

    def text(s: str) -> bytes:
        return b"X" + len(s).to_bytes(4, "little") + s.encode()

    def glob(module: str, name: str) -> bytes:
        return f"c{module}\n{name}\n".encode()

    def ints(values: tuple) -> bytes:
        return b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"

    pid = b"(" + text("storage") + glob("torch", storage) + text("0") + text("cpu")
    pid += b"K" + bytes([numel]) + b"tQ"
    args = b"(" + pid + b"K\x00" + ints(size) + ints(stride) + b"\x89"
    args += glob("collections", "OrderedDict") + b")Rt"
    return b"\x80\x02}" + text("w") + glob("torch._utils", "_rebuild_tensor_v2") + args + b"Rs."


def test_hand_made_zip_tensor_round_trips(tmp_path: Path):
    """The allow-listed rebuild path: a strided (transposed) fp16 tensor from a zip."""
    data = np.arange(6, dtype="<f2")
    payload = _tensor_pickle("HalfStorage", 6, (3, 2), (1, 3))
    state = read_state(_torch_zip(tmp_path / "t.pt", payload, {"0": data.tobytes()}))
    np.testing.assert_array_equal(state["w"], data.reshape(2, 3).T.astype(np.float32))
    assert state["w"].dtype == np.float32


def test_tensor_overrunning_its_storage_is_refused(tmp_path: Path):
    payload = _tensor_pickle("FloatStorage", 6, (3, 3), (3, 1))
    path = _torch_zip(tmp_path / "t.pt", payload, {"0": np.zeros(6, "<f4").tobytes()})
    assert "overruns its storage" in _one_line_error(path)
    broadcast = _tensor_pickle("FloatStorage", 6, (200, 200), (0, 0))  # 40000 from 6
    path = _torch_zip(tmp_path / "b.pt", broadcast, {"0": np.zeros(6, "<f4").tobytes()})
    assert "overruns its storage" in _one_line_error(path)
    short = _torch_zip(tmp_path / "s.pt", payload, {"0": bytes(8)})
    assert "holds 8 bytes, expected 24" in _one_line_error(short)


# zip, legacy pickle, safetensors through the library, bf16 safetensors by hand
TRUNCATABLE = [
    "rrdb_basicsr_x4.pth",
    "srvgg_x1.pth",
    "srvgg_x2.safetensors",
    "rrdb_bsrgan_x4.safetensors",
]


@pytest.mark.parametrize("name", TRUNCATABLE)
def test_truncated_file_is_one_line_error(tmp_path: Path, name: str):
    raw = (FIXTURES / name).read_bytes()
    for cut in (len(raw) // 2, len(raw) - 3, 7):
        path = tmp_path / name
        path.write_bytes(raw[:cut])
        _one_line_error(path)


def test_unknown_and_missing_files(tmp_path: Path):
    garbage = tmp_path / "weights.dat"
    garbage.write_bytes(b"GIF89a" + bytes(100))
    assert "unknown model file type" in _one_line_error(garbage)
    assert "cannot read" in _one_line_error(tmp_path / "absent.pth")


def test_agrees_with_torch_load_when_installed():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (only make_arch_fixtures.py needs it)")
    import torch

    for path in sorted(FIXTURES.glob("*.pth")):
        state = unwrap(_to_numpy(torch.load(path, map_location="cpu", weights_only=True)))
        mine = read_state(path)
        assert list(mine) == list(state), path.name
        for key, value in state.items():
            np.testing.assert_array_equal(mine[key], value, err_msg=f"{path.name} {key}")


def _to_numpy(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.float().numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("mylib.losses", "GANLoss")],
)
def test_global_outside_both_lists_is_refused_even_beside_the_weights(
    tmp_path: Path, module: str, name: str
):
    """Only named checkpoint metadata becomes a stand-in: anything else in a side key (where
    no reader looks for weights) still refuses the whole file, naming what it asked for."""
    checkpoint = _lightning_checkpoint(compact_x1_state())
    checkpoint["hyper_parameters"] = Foreign(module, name, {"cmd": "touch pwned"})
    msg = _one_line_error(torch_save(tmp_path / "side.ckpt", checkpoint))
    assert f"refusing {module}.{name}" in msg


def test_checkpoint_metadata_list_is_by_package_and_builtins_by_name():
    assert torchpickle.is_checkpoint_metadata("omegaconf.dictconfig", "DictConfig")
    assert torchpickle.is_checkpoint_metadata("lightning.fabric.utilities.data", "AttributeDict")
    assert torchpickle.is_checkpoint_metadata("builtins", "set")
    assert not torchpickle.is_checkpoint_metadata("builtins", "getattr")
    assert not torchpickle.is_checkpoint_metadata("omegaconfx", "DictConfig")
    assert not torchpickle.is_checkpoint_metadata("torch.nn.modules.conv", "Conv2d")


@pytest.mark.parametrize("layout", [_torch_zip, _legacy])
def test_shared_containers_are_read_once(tmp_path: Path, layout):
    """A pickle's memo lets a tiny file name one list from 2**64 paths: each container is
    converted once, as shared as it was saved, or reading it would never end."""
    for depth in (4, 64):  # the small one first: a walk per path fails it quickly
        nested: list = []
        for _ in range(depth):
            nested = [nested, nested]
        pickled = pickle.dumps({"params": nested}, protocol=2)
        assert len(pickled) < 1000
        path = layout(tmp_path / f"shared{depth}.pth", pickled)
        root = torchpickle.load(path.read_bytes())["params"]
        assert root[0] is root[1] and root[0][0] is root[1][1]
        assert "no tensors found" in _one_line_error(path)


def test_builtins_as_protocol_2_names_them_are_metadata(tmp_path: Path):
    """``torch.save`` pickles with protocol 2, which writes ``builtins.set`` as
    ``__builtin__.set``: still a named plain container, and ``__builtin__.eval`` still
    refused as ``builtins.eval``."""
    checkpoint = _lightning_checkpoint(compact_x1_state())
    checkpoint["callbacks"] = {"EarlyStopping": {"seen": {1, 2}}}  # pickled via __builtin__
    path = torch_save(tmp_path / "set.ckpt", checkpoint)
    assert b"c__builtin__\nset" in zipfile.ZipFile(path).read("archive/data.pkl")
    assert sorted(read_state(path)) == sorted(f"model.{k}" for k in compact_x1_state())
    checkpoint["callbacks"] = Foreign("__builtin__", "eval", {})
    msg = _one_line_error(torch_save(tmp_path / "eval.ckpt", checkpoint))
    assert "refusing builtins.eval" in msg


def test_omegaconf_config_recording_its_plain_type_is_metadata(tmp_path: Path):
    """omegaconf (>= 2.1) keeps ``object_type=dict`` in a DictConfig's metadata, so a Hydra
    run's hyper-parameters pickle ``builtins.dict`` (as ``__builtin__.dict``) by name."""
    metadata = Foreign("omegaconf.base", "ContainerMetadata", {}, {"object_type": dict})
    checkpoint = _lightning_checkpoint(compact_x1_state())
    checkpoint["hyper_parameters"] = Foreign(
        "omegaconf.dictconfig", "DictConfig", {}, {"_metadata": metadata, "_content": {}}
    )
    path = torch_save(tmp_path / "hydra.ckpt", checkpoint)
    assert b"c__builtin__\ndict" in zipfile.ZipFile(path).read("archive/data.pkl")
    assert sorted(read_state(path)) == sorted(f"model.{k}" for k in compact_x1_state())


def _build_on_global(module: str, name: str, attribute: str, value: bytes) -> bytes:
    """A protocol-2 pickle that loads one global, BUILDs ``attribute = value`` onto it (the
    slot-state half of BUILD is a plain setattr), drops it and returns an empty dict."""
    key = attribute.encode()
    return (
        b"\x80\x02c"
        + f"{module}\n{name}\n".encode()
        + b"N}X"
        + struct.pack("<I", len(key))
        + key
        + value
        + b"s\x86b0}."
    )


def test_a_file_cannot_change_what_the_next_file_is_read_with(tmp_path: Path):
    """BUILD may set attributes on any object a pickle holds: the allow-listed rebuild
    functions and the stand-in classes a file gets are its own, so a crafted file leaves
    this process's reader as it was (serve and the worker read many files)."""
    rebuild_defaults = torchpickle._GLOBALS[("torch._utils", "_rebuild_tensor_v2")].__defaults__
    seven = b"K\x07\x85"  # the tuple (7,)
    crafted = [
        _build_on_global("torch._utils", "_rebuild_tensor_v2", "__defaults__", seven),
        _build_on_global("omegaconf.dictconfig", "DictConfig", "origin", b"X\x01\x00\x00\x00x"),
    ]
    for index, pickled in enumerate(crafted):  # neither holds tensors: refused, after BUILD ran
        with pytest.raises(ModelFileError):
            read_state(_legacy(tmp_path / f"crafted{index}.pth", pickled))
    rebuild = torchpickle._GLOBALS[("torch._utils", "_rebuild_tensor_v2")]
    assert rebuild.__defaults__ == rebuild_defaults
    checkpoint = _lightning_checkpoint(compact_x1_state())
    checkpoint["state_dict"]["model.body.0.weight"] = Foreign(
        "omegaconf.dictconfig", "DictConfig", {}
    )
    msg = _one_line_error(torch_save(tmp_path / "next.ckpt", checkpoint))
    assert "omegaconf.dictconfig.DictConfig" in msg
    # and a file that does read still reads the same tensors after the crafted ones
    state = compact_x1_state()
    got = read_state(torch_save(tmp_path / "after.ckpt", _lightning_checkpoint(state)))
    np.testing.assert_array_equal(got["model.body.0.weight"], state["body.0.weight"])
