"""pipeline: Upscaler on arrays, run_jobs batches (errors, overwrite rules, threads), reports."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

from srgan_cli.errors import UsageError
from srgan_cli.imageio import DecodedImage, read_image
from srgan_cli.pipeline import (
    ImageResult,
    Job,
    Upscaler,
    build_report,
    check_report_path,
    choose_precision,
    cpu_features,
    run_jobs,
    upscale_alpha,
    write_report,
)
from srgan_cli.split import SplitNetwork
from srgan_cli.tiling import peak_bytes_per_px

IMAGE_KEYS = {
    "input",
    "output",
    "model",
    "in_size",
    "out_size",
    "tiles",
    "load_s",
    "infer_s",
    "save_s",
    "total_s",
    "skipped",
    "notes",
    "node",
}
REPORT_KEYS = {"version", "model", "precision", "threads", "startup_s", "total_s", "images"}


@pytest.fixture(scope="module")
def upscaler(tiny_weights: Path) -> Upscaler:
    return Upscaler(weights=tiny_weights, precision="fp32")


def random_pixels(height: int, width: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    peak = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, peak + 1, (height, width, 3), dtype=dtype)


def batch(upscaler: Upscaler, jobs: list[Job], **kwargs) -> list[ImageResult]:
    options = {"overwrite": False, "skip_existing": False, "stdin_bytes": None, "stdout": None}
    return run_jobs(upscaler, jobs, **{**options, **kwargs})


def job(source: Path, output: Path) -> Job:
    return Job(source, output, str(source))


# -- CPU features and precision -------------------------------------------------------------


def test_cpu_features_reads_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert cpu_features(cpuinfo) == {"avx512f": True, "avx512_bf16": True, "amx_bf16": False}
    assert cpu_features(tmp_path / "absent") == dict.fromkeys(cpu_features(cpuinfo), False)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"avx512f": True, "avx512_bf16": False, "amx_bf16": False}, "fp32"),
        ({"avx512f": True, "avx512_bf16": True, "amx_bf16": False}, "bf16"),
        ({"avx512f": False, "avx512_bf16": False, "amx_bf16": True}, "bf16"),
    ],
)
def test_auto_precision_follows_native_bf16(features, expected):
    assert choose_precision("auto", features) == expected
    assert choose_precision("fp32", features) == "fp32"


def test_unknown_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="fp16"):
        choose_precision("fp16")


# -- Upscaler on arrays ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_upscale_shape_and_dtype(upscaler, dtype):
    out = upscaler.upscale(random_pixels(10, 14, dtype))
    assert out.shape == (40, 56, 3)
    assert out.dtype == dtype
    assert upscaler.precision_used == "fp32"
    assert upscaler.name == "tiny"


def test_upscale_image_keeps_alpha_mode_and_notes(upscaler):
    alpha = np.zeros((10, 12), dtype=np.uint8)
    alpha[:, :6] = 255
    image = DecodedImage(random_pixels(10, 12), alpha, "RGBA", None, ["a note"])
    out = upscaler.upscale_image(image)
    assert out.mode == "RGBA"
    assert out.pixels.shape == (40, 48, 3)
    assert out.alpha is not None and out.alpha.shape == (40, 48)
    assert out.alpha.dtype == np.uint8
    # Flat regions of the mask stay exactly flat (no invented texture) away from the edge.
    assert (out.alpha[:, :20] == 255).all() and (out.alpha[:, 28:] == 0).all()
    assert out.notes == ["a note"]


def test_upscale_alpha_uint16_and_constant():
    flat = np.full((5, 7), 40000, dtype=np.uint16)
    out = upscale_alpha(flat)
    assert out.shape == (20, 28) and out.dtype == np.uint16
    assert (out == 40000).all()


def test_tiled_equals_whole(tiny_weights):
    # Tiles (16 + 16 pad) are smaller than the image, so context really is cut off; the tiny
    # net's receptive field (~12 input px) fits in the pad, so only float round-off differs.
    pixels = random_pixels(56, 64, seed=3)
    tiled = Upscaler(weights=tiny_weights, precision="fp32", tile=16, tile_pad=16)
    whole = Upscaler(weights=tiny_weights, precision="fp32", tile=0)
    assert tiled.tiles_for(56, 64) == 16
    assert whole.tiles_for(56, 64) == 1
    diff = np.abs(tiled.upscale(pixels).astype(int) - whole.upscale(pixels).astype(int))
    assert diff.max() <= 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_rrdbnet_runs_split_and_its_tiles_match_the_whole(rrdb_x2_file: Path, precision: str):
    """An imported RRDBNet runs its upsampler in row strips (``split.for_arch``) whatever the
    front end, as every one goes through ``Upscaler``; tiles match the whole image within 1
    grey level in both precisions, and tiles are sized by the split network's memory."""
    pixels = random_pixels(70, 45, seed=6)
    whole = Upscaler(weights=rrdb_x2_file, precision=precision, tile=0)
    assert isinstance(whole._predict, SplitNetwork)
    assert whole.bytes_per_px == peak_bytes_per_px("RRDBNet", whole.spec.params["num_feat"])
    tiled = Upscaler(weights=rrdb_x2_file, precision=precision, tile=24, tile_pad=32)
    assert tiled.tiles_for(70, 45) == 6
    out = tiled.upscale(pixels)
    assert out.shape == (140, 90, 3) and out.std() > 5
    assert np.abs(out.astype(int) - whole.upscale(pixels).astype(int)).max() <= 1


def test_own_generator_runs_split(upscaler: Upscaler):
    """Our generator runs with its fast tail (``model.for_inference``), cut at ``long_skip``."""
    assert isinstance(upscaler._predict, SplitNetwork)
    assert upscaler._predict.tail.margin == 3


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_shipped_model_split_tiles_match_the_whole(precision: str):
    """The shipped default generator in row strips gives the same bytes as with its upsampler
    whole, for the whole image (3 strips) and for tiles of 164 padded rows (2 strips); in fp32
    the tiles match the whole image within 1 grey level. (In bf16 the 32 px of context leave
    up to 3 grey levels at the seams on this white noise, strips or not.)"""
    pixels = random_pixels(200, 72, seed=7)
    outputs = []
    for tile in (0, 100):
        up = Upscaler(model="srgan", precision=precision, tile=tile, tile_pad=32)
        assert isinstance(up._predict, SplitNetwork)
        assert up.tiles_for(200, 72) == (2 if tile else 1)
        split = up.upscale(pixels)
        up._predict.strips = 1
        np.testing.assert_array_equal(up.upscale(pixels), split)
        outputs.append(split.astype(int))
    assert outputs[0].shape == (800, 288, 3) and outputs[0].std() > 5
    if precision == "fp32":
        assert np.abs(outputs[1] - outputs[0]).max() <= 1


def test_on_tile_called_per_tile(tiny_weights):
    up = Upscaler(weights=tiny_weights, precision="fp32", tile=8, tile_pad=4)
    calls = []
    up.upscale(random_pixels(10, 20), on_tile=lambda: calls.append(1))
    assert len(calls) == up.tiles_for(10, 20) == 6


def test_auto_tile_from_memory_budget(tiny_weights):
    small = Upscaler(weights=tiny_weights, precision="fp32", memory_budget=1 << 20)
    assert small.tile is None
    assert small.tiles_for(10, 10) == 1
    assert small.tiles_for(400, 400) > 1


def test_bf16_precision_runs(tiny_weights, upscaler):
    bf16 = Upscaler(weights=tiny_weights, precision="bf16")
    assert bf16.precision_used == "bf16"
    pixels = random_pixels(12, 12, seed=5)
    out = bf16.upscale(pixels)
    assert out.shape == (48, 48, 3) and out.dtype == np.uint8
    # bf16 keeps ~3 significant digits: close to fp32 on average, not bit-equal.
    assert np.abs(out.astype(int) - upscaler.upscale(pixels).astype(int)).mean() < 3


def test_bad_tile_is_a_usage_error(tiny_weights):
    with pytest.raises(UsageError):
        Upscaler(weights=tiny_weights, tile=-1)


# -- run_jobs -------------------------------------------------------------------------------


def test_run_jobs_isolates_a_bad_file(upscaler, tmp_path, corrupt_png):
    good = [make_image(tmp_path / f"g{i}.png", seed=i, size=(9, 7)) for i in range(3)]
    sources = [good[0], corrupt_png, good[1], good[2]]
    seen: list[str] = []
    results = batch(
        upscaler,
        [job(s, tmp_path / "out" / s.name) for s in sources],
        on_image=lambda r: seen.append(r.input),
    )
    assert [r.input for r in results] == [str(s) for s in sources] == seen
    assert [r.error is None for r in results] == [True, False, True, True]
    assert str(corrupt_png) in results[1].error and "\n" not in results[1].error
    for source in good:
        with Image.open(tmp_path / "out" / source.name) as img:
            assert img.size == (36, 28)
    assert not (tmp_path / "out" / corrupt_png.name).exists()
    assert results[0].in_size == [9, 7] and results[0].out_size == [36, 28]
    assert results[0].tiles == 1 and results[0].total_s >= results[0].infer_s > 0


def test_refuses_to_overwrite_inputs(upscaler, tmp_path, rgb_png):
    before = rgb_png.read_bytes()
    other = make_image(tmp_path / "other.png", seed=9)
    link = tmp_path / "link.png"
    os.link(rgb_png, link)
    results = batch(
        upscaler,
        [
            job(rgb_png, rgb_png),  # itself
            job(rgb_png, link),  # a hard link to itself
            job(other, rgb_png),  # another input of the batch
        ],
        overwrite=True,
    )
    assert all("refusing to overwrite input" in r.error for r in results)
    assert rgb_png.read_bytes() == before


def test_two_jobs_never_share_an_output(upscaler, tmp_path, rgb_png, gray_png):
    out = tmp_path / "same.png"
    results = batch(upscaler, [job(rgb_png, out), job(gray_png, out)])
    assert results[0].error is None
    assert "also the output of" in results[1].error
    with Image.open(out) as img:
        assert img.mode == "RGB"


def test_existing_output_rules(upscaler, tmp_path, rgb_png):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    (refused,) = batch(upscaler, [job(rgb_png, out)])
    assert "exists (use --overwrite, --update or --skip-existing)" in refused.error
    assert out.read_bytes() == b"old"

    newer = rgb_png.stat().st_mtime + 10
    os.utime(out, (newer, newer))
    (skipped,) = batch(upscaler, [job(rgb_png, out)], update=True)
    assert skipped.skipped and skipped.error is None
    assert out.read_bytes() == b"old"

    older = rgb_png.stat().st_mtime - 10
    os.utime(out, (older, older))
    (kept,) = batch(upscaler, [job(rgb_png, out)], skip_existing=True)
    assert kept.skipped and out.read_bytes() == b"old"  # whatever its age
    (redone,) = batch(upscaler, [job(rgb_png, out)], update=True)
    assert not redone.skipped and redone.error is None
    assert out.read_bytes().startswith(b"\x89PNG")

    out.write_bytes(b"old")
    (overwritten,) = batch(upscaler, [job(rgb_png, out)], overwrite=True)
    assert overwritten.error is None and out.read_bytes().startswith(b"\x89PNG")


def test_rgba_and_gray_files_keep_their_mode(upscaler, tmp_path, rgba_png, gray_png):
    results = batch(
        upscaler, [job(rgba_png, tmp_path / "a.png"), job(gray_png, tmp_path / "g.png")]
    )
    assert all(r.error is None for r in results)
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "g.png") as g:
        assert (a.mode, a.size) == ("RGBA", (48, 40))
        assert (g.mode, g.size) == ("L", (48, 40))


def test_stdin_to_stdout(upscaler, rgb_png):
    sink = io.BytesIO()
    (result,) = batch(
        upscaler, [Job(None, None, "<stdin>")], stdin_bytes=rgb_png.read_bytes(), stdout=sink
    )
    assert result.error is None and result.output == "-"
    with Image.open(io.BytesIO(sink.getvalue())) as img:
        assert img.size == (48, 40)


def test_output_bytes_are_deterministic(upscaler, tmp_path, rgba_png):
    first, second = tmp_path / "1.png", tmp_path / "2.png"
    batch(upscaler, [job(rgba_png, first)])
    batch(upscaler, [job(rgba_png, second)])
    assert first.read_bytes() == second.read_bytes()
    decoded = read_image(first)
    assert decoded.mode == "RGBA"


def test_interrupt_propagates_and_stops_threads(upscaler, tmp_path):
    sources = [make_image(tmp_path / f"in{i}.png", seed=i) for i in range(6)]
    before = threading.active_count()
    calls = 0

    def interrupt_on_third_tile(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch(
            upscaler,
            [job(s, tmp_path / "out" / s.name) for s in sources],
            on_tile=interrupt_on_third_tile,
        )
    assert threading.active_count() == before
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) < len(sources)
    assert not list((tmp_path / "out").glob(".*"))
    for path in written:
        with Image.open(path) as img:
            img.verify()


def test_bug_in_a_helper_thread_is_raised(upscaler, tmp_path, rgb_png):
    def broken(result: ImageResult) -> None:
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        batch(upscaler, [job(rgb_png, tmp_path / "o.png")], on_image=broken)


# -- report ---------------------------------------------------------------------------------


def _report(upscaler, tmp_path, corrupt_png, rgb_png):
    results = batch(
        upscaler, [job(rgb_png, tmp_path / "o1.png"), job(corrupt_png, tmp_path / "o2.png")]
    )
    return build_report(
        results,
        version="9.9",
        model="tiny",
        precision="fp32",
        threads=2,
        startup_s=0.5,
        total_s=1.25,
    )


def test_report_json_schema(upscaler, tmp_path, corrupt_png, rgb_png):
    path = tmp_path / "r.json"
    write_report(_report(upscaler, tmp_path, corrupt_png, rgb_png), path)
    data = json.loads(path.read_text())
    assert set(data) == REPORT_KEYS
    assert (data["version"], data["model"], data["threads"]) == ("9.9", "tiny", 2)
    good, bad = data["images"]
    assert set(good) == IMAGE_KEYS
    assert set(bad) == IMAGE_KEYS | {"error"}
    assert good["in_size"] == [12, 10] and good["out_size"] == [48, 40]
    assert (good["model"], bad["model"]) == ("tiny", "")  # the unreadable one met no model


def test_report_csv_schema(upscaler, tmp_path, corrupt_png, rgb_png):
    path = tmp_path / "r.csv"
    write_report(_report(upscaler, tmp_path, corrupt_png, rgb_png), path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert set(rows[0]) == IMAGE_KEYS | {"error"}
    assert rows[0]["out_size"] == "48x40" and rows[0]["error"] == ""
    assert rows[0]["skipped"] == "false"
    assert str(Path(rows[1]["input"])) in rows[1]["error"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_suffix_checked():
    assert check_report_path("a.JSON") == "json"
    assert check_report_path("a.csv") == "csv"
    with pytest.raises(UsageError, match=r"\.json or \.csv"):
        check_report_path("a.txt")


def test_refusal_from_header_decodes_nothing(tmp_path, rgb_png, rgba_png, corrupt_png):
    from srgan_cli.pipeline import refusal_from_header

    jpeg = tmp_path / "out.jpg"
    assert refusal_from_header(Job(rgb_png, jpeg, "rgb.png", "jpeg")) is None
    refused = refusal_from_header(Job(rgba_png, jpeg, "rgba.png", "jpeg"))
    assert (
        refused
        == "rgba.png: has an alpha channel, which JPEG cannot store; write png or webp instead"
    )
    assert refusal_from_header(Job(rgba_png, tmp_path / "o.png", "rgba.png")) is None
    assert "corrupt" in refusal_from_header(Job(corrupt_png, jpeg, "c.png", "jpeg"))
    too_big = refusal_from_header(Job(rgb_png, jpeg, "rgb.png", "jpeg"), max_pixels=10)
    assert "over the limit of 10" in too_big
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)  # opening it would block, and reading it would lose the bytes
    assert refusal_from_header(Job(fifo, jpeg, "fifo.png", "jpeg")) is None
    assert refusal_from_header(Job(None, None, "<stdin>", "jpeg")) is None
