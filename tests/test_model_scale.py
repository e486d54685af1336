"""Imported models at their own scale (x2 RRDBNet with pixel-unshuffle, x1 Compact) through
every front end: the library, ``srgan upscale``, a real worker, real local Ray and serve."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.pipeline import Upscaler

pytest.importorskip("safetensors")


@pytest.fixture
def own_worker_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """A runtime directory of this test's own; the worker started in it is stopped after."""
    import tempfile

    from srgan_cli.worker import client

    monkeypatch.setenv("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="srgw-"))
    yield
    client.ask("stop")


def upscale(*args: object):
    return CliRunner().invoke(main, ["upscale", *map(str, args)])


@pytest.fixture(scope="module")
def rrdb_x2(rrdb_x2_file: Path) -> Upscaler:
    return Upscaler(weights=rrdb_x2_file, precision="fp32")


def test_upscaler_takes_the_scale_and_multiple_from_the_model(rrdb_x2: Upscaler):
    assert (rrdb_x2.scale, rrdb_x2.spec.input_multiple, rrdb_x2.spec.arch) == (2, 2, "RRDBNet")
    pixels = np.random.default_rng(0).integers(0, 256, (15, 11, 3), dtype=np.uint8)  # odd sides
    out = rrdb_x2.upscale(pixels)
    assert out.shape == (30, 22, 3) and out.dtype == np.uint8
    assert out.std() > 5  # a real picture came out, not a flat or clipped one


@pytest.mark.parametrize("tile,pad", [(16, 32), (7, 33)])  # odd: rounded up to the multiple
def test_tiled_equals_whole_within_one_grey_level(rrdb_x2_file: Path, tile: int, pad: int):
    """The pad covers the net's receptive field (~36 LR px here: 17 convs on the 2x
    unshuffled grid), as DEFAULT_TILE_PAD does for real models."""
    pixels = np.random.default_rng(1).integers(0, 256, (61, 47, 3), dtype=np.uint8)
    whole = Upscaler(weights=rrdb_x2_file, precision="fp32", tile=0).upscale(pixels)
    tiled_upscaler = Upscaler(weights=rrdb_x2_file, precision="fp32", tile=tile, tile_pad=pad)
    assert tiled_upscaler.tiles_for(61, 47) >= 12
    tiled = tiled_upscaler.upscale(pixels)
    assert tiled.shape == whole.shape == (122, 94, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


ARCH_FIXTURES = Path(__file__).parent / "fixtures" / "archs"


@pytest.mark.parametrize("name", ["msrresnet_x3.safetensors", "msrresnet_x4.pth"])
def test_msrresnet_upscales_unseen_sizes_tiled_as_whole(name: str, tmp_path: Path):
    """MSRResNet (bilinear input skip) at sizes it never saw (its fixture input is 4x8),
    through the library and ``srgan upscale --weights``: tiled = whole within 1 grey level."""
    weights = ARCH_FIXTURES / name
    pixels = np.random.default_rng(2).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    whole_upscaler = Upscaler(weights=weights, precision="fp32", tile=0)
    whole = whole_upscaler.upscale(pixels)
    scale = whole_upscaler.scale
    assert whole.shape == (37 * scale, 29 * scale, 3) and whole.std() > 5
    tiled_upscaler = Upscaler(weights=weights, precision="fp32", tile=12)
    assert tiled_upscaler.tiles_for(37, 29) == 12
    assert np.abs(tiled_upscaler.upscale(pixels).astype(int) - whole.astype(int)).max() <= 1
    source = tmp_path / "a.png"
    Image.fromarray(pixels).save(source)
    result = upscale(source, "--weights", weights, "--precision", "fp32", "--tile", 10, "-q")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / f"a_x{scale}.png") as out:
        assert np.abs(np.asarray(out).astype(int) - whole.astype(int)).max() <= 1


def test_cli_default_name_and_size_follow_the_model(rrdb_x2_file, compact_x1_file, tmp_path):
    source = make_image(tmp_path / "a.png", "RGB", (13, 9), seed=3)
    assert upscale(source, "--weights", rrdb_x2_file, "-q").exit_code == 0
    with Image.open(tmp_path / "a_x2.png") as out:
        assert out.size == (26, 18)
    result = upscale(source, "--weights", compact_x1_file, "-q")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a_x1.png") as out:
        assert out.size == (13, 9)
    result = upscale(source, "--weights", rrdb_x2_file, "--outscale", "1.5", "-q")
    assert result.exit_code == 0
    with Image.open(tmp_path / "a_x1.5.png") as out:
        assert out.size == (20, 14)


def test_outscale_above_the_model_scale_is_exit_2(compact_x1_file, tmp_path):
    source = make_image(tmp_path / "a.png", "RGB", (8, 8), seed=3)
    result = upscale(source, "--weights", compact_x1_file, "--outscale", "2")
    assert result.exit_code == 2 and "model's scale" in result.stderr
    assert not (tmp_path / "a_x2.png").exists()


def test_report_names_the_model(rrdb_x2_file, tmp_path):
    source = make_image(tmp_path / "a.png", "RGB", (8, 6), seed=4)
    report = tmp_path / "r.json"
    assert upscale(source, "--weights", rrdb_x2_file, "--report", report, "-q").exit_code == 0
    data = json.loads(report.read_text())
    assert (data["model"], data["arch"], data["scale"]) == ("rrdb_x2", "RRDBNet", 2)
    assert data["images"][0]["out_size"] == [16, 12]


def test_serve_answers_at_the_model_scale(rrdb_x2: Upscaler, tmp_path):
    from srgan_cli import server

    app = server.create_app(rrdb_x2)
    client = app.test_client()
    data = make_image(tmp_path / "p.png", "RGBA", (10, 7), seed=5).read_bytes()
    answer = client.post("/model/predict", data={"image": (io.BytesIO(data), "p.png")})
    assert answer.status_code == 200, answer.data[:200]
    with Image.open(io.BytesIO(answer.data)) as out:
        assert (out.size, out.mode) == ((20, 14), "RGBA")
    assert 'filename="p_x2.png"' in answer.headers["Content-Disposition"]
    meta = client.get("/model/metadata").get_json()
    assert (meta["scale"], meta["arch"]) == (2, "RRDBNet")
    assert meta["source"].startswith("imported from rrdb_x2.safetensors")
    bad = client.post("/model/predict?outscale=3", data={"image": (io.BytesIO(data), "p.png")})
    assert bad.status_code == 400


@pytest.mark.slow
def test_worker_serves_an_imported_model(rrdb_x2_file, tmp_path, own_worker_dir):
    from srgan_cli.worker import client

    started = subprocess.run(
        [sys.executable, "-m", "srgan_cli", "worker", "start", "--weights", str(rrdb_x2_file)],
        capture_output=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr.decode()
    source = make_image(tmp_path / "a.png", "RGB", (12, 10), seed=6)
    before = client.ask("status")["jobs_done"]
    served = upscale(source, "-o", tmp_path / "w.png", "--weights", rrdb_x2_file, "-q")
    assert served.exit_code == 0, served.output
    assert client.ask("status")["jobs_done"] == before + 1
    local = upscale(source, "-o", tmp_path / "n.png", "--weights", rrdb_x2_file, "--no-worker")
    assert local.exit_code == 0
    assert (tmp_path / "w.png").read_bytes() == (tmp_path / "n.png").read_bytes()
    with Image.open(tmp_path / "w.png") as out:
        assert out.size == (24, 20)


@pytest.mark.slow
def test_ray_local_runs_an_imported_model(seed_checkpoint, tmp_path):
    pytest.importorskip("ray")
    prefix, _ = seed_checkpoint
    photos = tmp_path / "in"
    for i in range(2):
        make_image(photos / f"p{i}.png", "RGB", (9 + i, 7), seed=i)
    args = ["--weights", prefix, "--precision", "fp32", "-q"]
    ray_run = upscale(photos, "-o", tmp_path / "ray", "--ray", "local", "--ray-actors", "1", *args)
    assert ray_run.exit_code == 0, ray_run.output
    here = upscale(photos, "-o", tmp_path / "here", *args)
    assert here.exit_code == 0
    for i in range(2):
        with (
            Image.open(tmp_path / "ray" / f"p{i}.png") as a,
            Image.open(tmp_path / "here" / f"p{i}.png") as b,
        ):
            assert a.size == b.size == ((9 + i) * 4, 28)
            assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1


def test_eval_runs_the_protocol_at_the_model_scale(rrdb_x2: Upscaler, compact_x1_file, tmp_path):
    from srgan_cli.evaluate import BenchmarkSet, evaluate, score_image

    hr_path = make_image(tmp_path / "set" / "h.png", "RGB", (27, 19), seed=7)
    result = evaluate([BenchmarkSet("set", (hr_path,))], rrdb_x2)
    data = result.to_dict()
    assert data["protocol"]["scale"] == 2 and "x1/2" in data["protocol"]["degradation"]
    assert np.isfinite(data["sets"][0]["psnr"])
    compact = Upscaler(weights=compact_x1_file, precision="fp32")
    hr = np.asarray(Image.open(hr_path))
    score = score_image(hr, compact)
    expected_lr = hr  # an x1 model is scored on the input itself
    out = compact.upscale(expected_lr)
    from srgan_cli.metrics import psnr

    assert score.psnr == pytest.approx(psnr(hr, out, border=1))
    assert score.bicubic_psnr == float("inf") or score.bicubic_psnr > 90  # bicubic x1 = HR


def test_bench_reports_an_imported_model(rrdb_x2: Upscaler):
    from srgan_cli.bench import measure_model, report_lines

    result = measure_model(rrdb_x2, size=16, repeats=1)
    assert result["output_size"] == [32, 32] and result["gflops"] is None
    assert result["architecture"]["arch"] == "RRDBNet"
    lines = report_lines({**result, "matmul_peak_gflops": 1.0, "percent_of_peak": None})
    assert "RRDBNet" in lines[0] and "16x16 -> 32x32" in lines[1]
