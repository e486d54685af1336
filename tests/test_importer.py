"""importer, ``srgan import`` and ``srgan info FILE``: foreign files in, checked models out."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import compact_x1_state, rrdbnet_x2_state, save_safetensors, settled_copy, torch_save
from PIL import Image

from srgan_cli import importer, weights
from srgan_cli.cli import main

pytest.importorskip("safetensors")


def srgan(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_import_safetensors_writes_weights_and_card(rrdb_x2_file, tmp_path):
    out = tmp_path / "x2.weights.h5"
    result = srgan("import", rrdb_x2_file, "-o", out, "--license", "Apache-2.0")
    assert result.exit_code == 0, result.output
    assert "RRDBNet (BasicSR keys) 1 blocks, 8 feat, 4 growth, x2" in result.output
    card = json.loads(weights.card_path(out).read_text())
    assert card["name"] == "rrdb_x2" and card["license"] == "Apache-2.0"
    assert card["architecture"]["arch"] == "RRDBNet" and card["architecture"]["scale"] == 2
    assert card["source"] == {"file": rrdb_x2_file.name, "sha256": weights.sha256_of(rrdb_x2_file)}
    assert card["sha256"] == weights.sha256_of(out)
    model, loaded = weights.load_generator(out)
    x = np.random.default_rng(1).uniform(0, 1, (1, 8, 6, 3)).astype(np.float32)
    from srgan_cli import archs
    from srgan_cli.modelfile import read_state

    direct, _ = archs.convert(read_state(rrdb_x2_file))
    np.testing.assert_allclose(model.predict_on_batch(x), direct.predict_on_batch(x), atol=1e-6)
    assert loaded.name == "rrdb_x2"


def test_import_seed_checkpoint(seed_checkpoint, tmp_path):
    prefix, _ = seed_checkpoint
    out = tmp_path / "seed.weights.h5"
    result = srgan("import", prefix, "-o", out, "--name", "old-service")
    assert result.exit_code == 0, result.output
    assert "SeedSRGAN 2 blocks, 8 feat, x4" in result.output
    card = weights.WeightCard.read(weights.card_path(out))
    assert card.name == "old-service" and card.source["file"] == "model.index"
    assert weights.spec_of(card).scale == 4


def test_import_refuses_to_overwrite(rrdb_x2_file, tmp_path):
    out = tmp_path / "x.weights.h5"
    out.write_bytes(b"keep")
    result = srgan("import", rrdb_x2_file, "-o", out)
    assert result.exit_code == 2 and out.read_bytes() == b"keep"


def test_info_file_describes_without_converting(rrdb_x2_file, private_model_cache):
    before = set(private_model_cache.iterdir())
    result = srgan("info", rrdb_x2_file, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["arch"], data["scale"], data["input_multiple"]) == ("RRDBNet", 2, 2)
    assert data["num_params"] == sum(v.size for v in rrdbnet_x2_state().values())
    assert data["sha256"] == weights.sha256_of(rrdb_x2_file)
    assert set(private_model_cache.iterdir()) == before  # nothing converted
    text = srgan("info", rrdb_x2_file)
    assert text.exit_code == 0 and "x2" in text.output and data["sha256"] in text.output


def test_info_file_keeps_tensorflow_out(rrdb_x2_file):
    import subprocess
    import sys

    code = (
        "import sys; from srgan_cli.cli import main; "
        f"main(['info', {str(rrdb_x2_file)!r}], standalone_mode=False); "
        "print('TF' if 'tensorflow' in sys.modules else 'noTF')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("noTF")


def test_cache_converts_once(compact_x1_file, private_model_cache):
    path = weights.resolve(weights=compact_x1_file)
    first = importer.cached(path)
    assert first.parent == private_model_cache
    stamp = first.stat().st_mtime_ns
    os.utime(first, ns=(stamp - 10**9, stamp - 10**9))  # a rewrite would move it forward
    again = importer.cached(path)
    assert again == first and again.stat().st_mtime_ns == stamp - 10**9
    _model, card = weights.load_generator(path)
    assert card.source["sha256"] == weights.sha256_of(compact_x1_file)
    assert first.stat().st_mtime_ns == stamp - 10**9


def test_damaged_cache_entry_is_redone(compact_x1_file):
    path = weights.resolve(weights=compact_x1_file)
    cached = importer.cached(path)
    cached.write_bytes(b"garbage")
    assert importer.cached(path) == cached
    weights.verify(cached)  # rewritten whole, matching its card


def _one_line_exit_2(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", ["import", "info", "upscale"])
def test_truncated_file_exit_2(rrdb_x2_file, tmp_path, command, rgb_png):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(rrdb_x2_file.read_bytes()[:1000])
    args = [rgb_png, "--weights", cut] if command == "upscale" else [cut]
    line = _one_line_exit_2(srgan(command, *args))
    assert "cut.safetensors" in line and "RRDBNet" in line and "SeedSRGAN" in line


def test_unknown_architecture_exit_2(tmp_path):
    path = save_safetensors(
        tmp_path / "odd.safetensors", {"foo.weight": np.zeros((2, 2), np.float32)}
    )
    line = _one_line_exit_2(srgan("import", path))
    assert "unknown architecture" in line and "RRDBNet" in line and "foo.weight" in line


def test_wrong_shape_names_key_and_shapes(tmp_path):
    state = rrdbnet_x2_state()
    state["body.0.rdb2.conv3.weight"] = np.zeros((4, 15, 3, 3), np.float32)
    path = save_safetensors(tmp_path / "bad.safetensors", state)
    line = _one_line_exit_2(srgan("import", path))
    assert (
        "body.0.rdb2.conv3.weight" in line and "(4, 16, 3, 3)" in line and "(4, 15, 3, 3)" in line
    )


def test_not_a_model_file_exit_2(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    line = _one_line_exit_2(srgan("info", path))
    assert "notes.txt" in line


@pytest.mark.parametrize("converted_before", [True, False])
def test_upscale_hashes_each_file_once(
    compact_x1_file, tmp_path, rgb_png, hash_reads, converted_before
):
    """The foreign file is hashed for its card and not again when the model loads; its
    conversion is verified (or written) once."""
    source = tmp_path / "model.safetensors"
    if converted_before:
        importer.cached(compact_x1_file)  # same bytes: the run finds the conversion
        settled_copy(compact_x1_file, source)
    else:
        settled_copy(save_safetensors(tmp_path / "new.st", compact_x1_state(seed=5)), source)
    hash_reads.clear()
    result = srgan("upscale", rgb_png, "-o", tmp_path / "out.png", "--weights", source, "-q")
    assert result.exit_code == 0, result.output
    assert hash_reads["model.safetensors"] == 1
    assert set(hash_reads.values()) == {1}, hash_reads


def test_info_hashes_the_file_once(rrdb_x2_file, tmp_path, hash_reads):
    source = settled_copy(rrdb_x2_file, tmp_path / "model.safetensors")
    result = srgan("info", source, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sha256"] == weights.sha256_of(rrdb_x2_file)
    assert hash_reads["model.safetensors"] == 1


def _lightning_ckpt(path, state: dict):
    """A Lightning-style checkpoint: the generator under ``state_dict`` as ``net_g.``, with a
    discriminator beside it and hyper-parameters of a class no reader builds."""
    from conftest import Foreign

    weights = {f"net_g.{k}": v for k, v in state.items()}
    weights["net_d.conv0.weight"] = np.ones((4, 3, 3, 3), np.float32)
    hparams = Foreign("omegaconf.dictconfig", "DictConfig", {"scale": 1})
    return torch_save(path, {"epoch": 2, "state_dict": weights, "hyper_parameters": hparams})


def _report_model(report) -> str:
    data = json.loads(report.read_text())
    assert data["images"][0]["model"] == data["model"]
    return data["model"]


@pytest.mark.parametrize("name", ["compact.pt", "epoch=2-step=400.ckpt", "4x-Sharp.v2.pth"])
def test_torch_suffixes_work_everywhere(tmp_path, rgb_png, name):
    """``.pt`` and ``.ckpt`` go through --weights, import and info like ``.pth``; the name
    (cards, reports) is the file's name without its suffix only, dots kept."""
    path = _lightning_ckpt(tmp_path / name, compact_x1_state())
    stem = name.rsplit(".", 1)[0]
    info = srgan("info", path, "--json")
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["name"] == stem
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    done = srgan("upscale", rgb_png, "--weights", path, "-o", out, "--report", report)
    assert done.exit_code == 0, done.output
    assert Image.open(out).size == Image.open(rgb_png).size  # x1
    assert _report_model(report) == stem
    imported = srgan("import", path, "-o", tmp_path / "m.weights.h5")
    assert imported.exit_code == 0, imported.output
    card = weights.WeightCard.read(tmp_path / "m.json")
    assert card.name == stem and card.source["file"] == name


def test_renamed_copy_is_named_by_itself(compact_x1_file, tmp_path, rgb_png):
    """The cache is keyed by content: a renamed copy finds the first name's conversion, but
    its reports and ``info`` name the file given."""
    first = srgan("upscale", rgb_png, "--weights", compact_x1_file, "-o", tmp_path / "a.png")
    assert first.exit_code == 0, first.output
    copy = tmp_path / "mine.safetensors"
    copy.write_bytes(compact_x1_file.read_bytes())
    report = tmp_path / "r.json"
    done = srgan(
        "upscale", rgb_png, "--weights", copy, "-o", tmp_path / "b.png", "--report", report
    )
    assert done.exit_code == 0, done.output
    assert _report_model(report) == "mine"
    data = json.loads(srgan("info", copy, "--json").output)
    assert data["name"] == "mine" and data["source"]["file"] == "mine.safetensors"


def _gray_compact(state: dict) -> dict:
    """``compact_x1_state`` cut to one channel in and out: a grayscale x1 model."""
    last = max(int(k.split(".")[1]) for k in state)
    gray = {**state, "body.0.weight": state["body.0.weight"][:, :1]}
    gray[f"body.{last}.weight"] = state[f"body.{last}.weight"][:1]
    gray[f"body.{last}.bias"] = state[f"body.{last}.bias"][:1]
    return gray


def test_grayscale_model_on_colour_and_gray_images(tmp_path, rgb_png, gray_png):
    """A 1-channel model reads a colour image's luma and writes it gray (R = G = B, in the
    input's mode); a gray image stays one channel."""
    path = save_safetensors(tmp_path / "1x_gray.safetensors", _gray_compact(compact_x1_state()))
    info = srgan("info", path)
    assert info.exit_code == 0 and "grayscale" in info.output, info.output
    for source in (rgb_png, gray_png):
        out = tmp_path / f"up_{source.name}"
        done = srgan("upscale", source, "--weights", path, "-o", out)
        assert done.exit_code == 0, done.output
        image = Image.open(out)
        assert image.mode == Image.open(source).mode and image.size == Image.open(source).size
        pixels = np.asarray(image.convert("RGB"))
        assert np.array_equal(pixels[..., 0], pixels[..., 2]) and pixels.std() > 1


def test_rgba_model_exit_2(tmp_path, rgb_png):
    state = compact_x1_state()
    state["body.0.weight"] = np.zeros((8, 4, 3, 3), np.float32)
    path = save_safetensors(tmp_path / "rgba.safetensors", state)
    for command in (("info", path), ("upscale", rgb_png, "--weights", path)):
        line = _one_line_exit_2(srgan(*command))
        assert "rgba.safetensors" in line and "takes 4 channels; need 1 or 3" in line
