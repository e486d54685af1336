"""``evaluate``: the benchmark protocol, its tables and JSON, comparison sheets, and the
``srgan eval`` / ``srgan compare`` commands, on tiny synthetic images and the tiny generator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

from srgan_cli import evaluate, lpips
from srgan_cli.cli import evaluate as evaluate_cmd
from srgan_cli.cli import main
from srgan_cli.errors import UsageError
from srgan_cli.evaluate import Box
from srgan_cli.metrics import bicubic_downscale, bicubic_upscale, crop_to_multiple, psnr, ssim

SHARED = Path(__file__).parents[1] / ".." / "shared"
LPIPS_WEIGHTS = SHARED / "weights" / "lpips_alex.npz"
SET5 = SHARED / "datasets" / "benchmark" / "Set5"
needs_lpips = pytest.mark.skipif(
    not LPIPS_WEIGHTS.is_file(), reason=f"LPIPS weights not found at {LPIPS_WEIGHTS}"
)


class BicubicModel:
    """A stand-in model that upscales exactly like the baseline."""

    name = "bicubic-stub"

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        return bicubic_upscale(pixels)


@pytest.fixture(scope="module")
def tiny(tiny_weights):
    from srgan_cli.pipeline import Upscaler

    return Upscaler(weights=tiny_weights, precision="fp32")


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    """A set 'Tiny': two RGB images and one grayscale one whose sides are not multiples of 4."""
    folder = tmp_path / "Tiny"
    make_image(folder / "b.png", size=(64, 52), seed=1)
    make_image(folder / "a.png", size=(48, 48), seed=2)
    make_image(folder / "c_gray.png", "L", size=(50, 39), seed=3)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_benchmark_sets_lists_images_by_name(bench, tmp_path):
    (sets,) = evaluate.benchmark_sets([bench])
    assert sets.name == "Tiny"
    assert [path.name for path in sets.images] == ["a.png", "b.png", "c_gray.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images in directory"):
        evaluate.benchmark_sets([tmp_path / "empty"])


def test_same_folder_names_are_told_apart(tmp_path):
    make_image(tmp_path / "x" / "Set" / "a.png", size=(40, 40))
    make_image(tmp_path / "y" / "Set" / "a.png", size=(40, 40))
    names = [s.name for s in evaluate.benchmark_sets([tmp_path / "x/Set", tmp_path / "y/Set"])]
    assert names == [str(tmp_path / "x/Set"), str(tmp_path / "y/Set")]


def test_grayscale_hr_becomes_rgb(bench):
    hr = evaluate.load_hr(bench / "c_gray.png")
    assert hr.shape == (39, 50, 3) and hr.dtype == np.uint8
    assert np.array_equal(hr[..., 0], hr[..., 1]) and np.array_equal(hr[..., 1], hr[..., 2])


def test_evaluate_scores_model_and_bicubic(bench, tiny):
    seen = []
    result = evaluate.evaluate(evaluate.benchmark_sets([bench]), tiny, on_image=seen.append)
    assert result.model == "tiny"
    assert [(row.set, row.image) for row in result.images] == [
        ("Tiny", "a.png"),
        ("Tiny", "b.png"),
        ("Tiny", "c_gray.png"),
    ]
    assert seen == list(result.images)
    hr = crop_to_multiple(evaluate.load_hr(bench / "b.png"))
    bicubic = bicubic_upscale(bicubic_downscale(hr))
    model = tiny.upscale(bicubic_downscale(hr))
    row = result.images[1]
    assert row.bicubic_psnr == psnr(hr, bicubic) and row.bicubic_ssim == ssim(hr, bicubic)
    assert row.psnr == psnr(hr, model) and row.ssim == ssim(hr, model)
    assert row.lpips is None and row.bicubic_lpips is None
    assert row.seconds > 0
    (summary,) = result.sets
    assert summary.images == 3
    assert summary.psnr == pytest.approx(np.mean([r.psnr for r in result.images]))
    assert summary.bicubic_ssim == pytest.approx(np.mean([r.bicubic_ssim for r in result.images]))
    assert summary.lpips is None


def test_a_model_that_is_bicubic_scores_like_the_baseline(bench):
    result = evaluate.evaluate(evaluate.benchmark_sets([bench]), BicubicModel(), lambda a, b: 0.5)
    for row in result.images:
        assert (row.psnr, row.ssim, row.lpips) == (
            row.bicubic_psnr,
            row.bicubic_ssim,
            row.bicubic_lpips,
        )
        assert 5 < row.psnr < 40 and 0 < row.ssim < 1 and row.lpips == 0.5


def test_tables_and_dict(bench):
    result = evaluate.evaluate(evaluate.benchmark_sets([bench]), BicubicModel())
    lines = evaluate.markdown_table(result).splitlines()
    assert lines[0] == "| set | bicubic PSNR / SSIM / LPIPS | bicubic-stub PSNR / SSIM / LPIPS |"
    assert lines[1] == "|---|---|---|"
    s = result.sets[0]
    cell = f"{s.psnr:.2f} / {s.ssim:.4f} / n/a"
    assert lines[2:] == [f"| Tiny (3) | {cell} | {cell} |"]
    text = evaluate.text_table(result).splitlines()
    assert len(text) == 2 and text[1].startswith("Tiny") and "n/a" in text[1]
    data = json.loads(json.dumps(result.to_dict(version="x")))
    assert data["version"] == "x" and data["model"] == "bicubic-stub"
    assert data["protocol"] == evaluate.PROTOCOL
    assert [list(row) for row in data["images"]] == [list(evaluate.SCORE_FIELDS)] * 3
    assert data["sets"][0]["set"] == "Tiny" and data["sets"][0]["images"] == 3


def test_box_snaps_outwards_to_the_grid():
    assert Box(5, 6, 10, 10).snapped() == Box(4, 4, 12, 12)
    assert Box(8, 0, 96, 96).snapped() == Box(8, 0, 96, 96)


def test_default_crop_finds_the_detail():
    hr = np.full((200, 240, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    hr[80:176, 120:216] = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert evaluate.default_crop(hr) == Box(120, 80, 96, 96)
    assert evaluate.default_crop(hr[:50, :70]) == Box(0, 0, 68, 48)


def test_comparison_sheet_panels_and_size(tiny):
    hr = make_image_array((400, 360))
    box, panels = evaluate.comparison_panels(hr, [tiny], Box(202, 182, 48, 40))
    assert box == Box(200, 180, 52, 44)
    assert [label for label, _ in panels] == ["bicubic", "tiny", "original (HR)"]
    # only LR context around the crop is upscaled: the same pixels as the whole image
    crop = (slice(180, 224), slice(200, 252))
    lr = bicubic_downscale(hr)
    assert np.array_equal(panels[0][1], bicubic_upscale(lr)[crop])
    assert np.abs(panels[1][1].astype(int) - tiny.upscale(lr)[crop]).max() <= 1
    assert np.array_equal(panels[2][1], hr[crop])
    box, sheet = evaluate.comparison_sheet(hr, [tiny, BicubicModel()])
    assert box.w == box.h == 96
    # 4 panels of 96 px x2, a 4 px gap around each; a 14 px label strip
    assert sheet.shape == (14 + 192 + 8, 4 * 192 + 5 * 4, 3) and sheet.dtype == np.uint8
    assert evaluate.sheet_size(4, 96, 96) == (sheet.shape[1], sheet.shape[0])


def test_comparison_crop_outside_the_image_is_refused(tiny):
    with pytest.raises(UsageError, match="does not fit"):
        evaluate.comparison_panels(make_image_array((64, 64)), [tiny], Box(40, 0, 32, 32))


def make_image_array(size: tuple[int, int], seed: int = 4) -> np.ndarray:
    """A smooth RGB image (height, width) with some detail, like a photo."""
    rng = np.random.default_rng(seed)
    h, w = size
    small = rng.integers(0, 256, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


# -- the commands ---------------------------------------------------------------------------


@pytest.fixture
def invoke(tiny_weights, tmp_path, monkeypatch):
    """``srgan <args> --weights <tiny>`` in-process, from a folder with no LPIPS weights."""
    monkeypatch.chdir(tmp_path)

    def run(*args: object, weights: bool = True):
        argv = [*map(str, args), *(["--weights", str(tiny_weights)] if weights else [])]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    return run


def test_eval_command_json_and_lpips_note(invoke, bench, tmp_path):
    out = tmp_path / "reports" / "eval.json"
    result = invoke("eval", bench, "--json", out)
    assert result.exit_code == 0, result.output
    note, summary = result.stderr.splitlines()
    assert note.startswith("note: LPIPS skipped: no weights at ../shared/weights/lpips_alex.npz")
    assert summary.startswith("srgan eval: 3 images in 1 set, tiny (")
    assert result.stdout.splitlines()[1].startswith("Tiny ")
    data = json.loads(out.read_text())
    assert data["model"] == "tiny" and data["lpips_weights"] is None
    assert data["precision"] in ("fp32", "bf16") and len(data["sha256"]) == 64
    assert [row["image"] for row in data["images"]] == ["a.png", "b.png", "c_gray.png"]
    for row in data["images"]:
        assert list(row) == list(evaluate.SCORE_FIELDS)
        assert row["lpips"] is None and row["bicubic_lpips"] is None
        assert all(math.isfinite(row[key]) for key in ("psnr", "ssim", "bicubic_psnr"))


def test_eval_command_markdown(invoke, bench, tmp_path):
    other = make_image(tmp_path / "Other" / "x.png", size=(40, 44)).parent
    result = invoke("eval", bench, other, "--markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "| set | bicubic PSNR / SSIM / LPIPS | tiny PSNR / SSIM / LPIPS |"
    assert lines[1] == "|---|---|---|"
    assert lines[2].startswith("| Tiny (3) | ") and lines[2].endswith(" / n/a |")
    assert lines[3].startswith("| Other (1) | ") and len(lines) == 4


def test_eval_command_usage_errors(invoke, bench, tmp_path):
    missing = invoke("eval", tmp_path / "nope")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = invoke("eval", tmp_path / "empty")
    assert empty.exit_code == 2 and "no images in directory" in empty.stderr
    both = invoke("eval", bench, "--model", "srgan")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_eval_command_degradation_chain_is_recorded_and_reproducible(invoke, bench, tmp_path):
    runs = {}
    for name, chain in [
        ("clean", "bicubic"),
        ("jpeg", "bicubic+jpeg75"),
        ("again", "BICUBIC+jpeg75"),
    ]:
        out = tmp_path / f"{name}.json"
        result = invoke("eval", bench, "--json", out, "--degradation", chain)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(out.read_text())
    assert runs["clean"]["degradation"] == "bicubic"
    assert runs["clean"]["protocol"] == evaluate.PROTOCOL
    assert runs["jpeg"]["degradation"] == "bicubic+jpeg75"
    assert "bicubic+jpeg75" in runs["jpeg"]["protocol"]["degradation"]
    bicubic = {name: [r["bicubic_psnr"] for r in data["images"]] for name, data in runs.items()}
    assert bicubic["jpeg"] == bicubic["again"] and bicubic["jpeg"] != bicubic["clean"]


def test_eval_command_tta_and_chain_errors(invoke, bench, tmp_path):
    out = tmp_path / "tta.json"
    result = invoke("eval", bench, "--tta", "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["tta"] is True and ", tta)" in result.stderr
    bad = invoke("eval", bench, "--degradation", "bicubic+sharpen3")
    assert bad.exit_code == 2 and "unknown degradation step 'sharpen3'" in bad.stderr
    record = invoke("eval", bench, "--degradation", "bicubic+noise5", "--record")
    assert record.exit_code == 2 and "--record stores the published protocol" in record.stderr


@needs_lpips
def test_eval_command_with_lpips(invoke, bench, tmp_path):
    out = tmp_path / "eval.json"
    result = invoke("eval", bench, "--json", out, "--lpips-weights", LPIPS_WEIGHTS.resolve())
    assert result.exit_code == 0, result.output
    assert "LPIPS skipped" not in result.stderr
    rows = json.loads(out.read_text())["images"]
    assert all(row["lpips"] > 0 and row["bicubic_lpips"] > 0 for row in rows)


def test_lpips_help_default_matches_the_library():
    assert str(lpips.default_weights_path()) == evaluate_cmd.DEFAULT_LPIPS_WEIGHTS_HELP


def test_compare_command_writes_the_sheet(invoke, tiny_weights, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(make_image_array((120, 160))).save(photo)
    sheet = tmp_path / "out" / "sheet.png"
    argv = ("compare", photo, "-o", sheet, "--models", tiny_weights, "--crop", "8,8,40,40")
    result = invoke(*argv, weights=False)
    assert result.exit_code == 0, result.output
    assert "crop 8,8,40,40" in result.stderr
    with Image.open(sheet) as img:
        # bicubic | tiny | original, 40 px crops shown x2
        assert img.size == (3 * 80 + 4 * 4, 14 + 80 + 8) and img.mode == "RGB"
        clean = np.asarray(img)
    assert not [p for p in sheet.parent.iterdir() if p.name.startswith(".")]
    damaged = invoke(*argv, "--degradation", "bicubic+jpeg30", weights=False)
    assert damaged.exit_code == 0 and "bicubic+jpeg30" in damaged.stderr
    with Image.open(sheet) as img:  # the bicubic and model panels change, the original not
        jpeg = np.asarray(img)
    assert not np.array_equal(jpeg[:, : 2 * 84], clean[:, : 2 * 84])
    np.testing.assert_array_equal(jpeg[:, -84:], clean[:, -84:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--models", "srgna"), "neither a shipped model"),
        (("--crop", "1,2,3"), "four integers"),
        (("--crop", "0,0,0,8"), "W and H > 0"),
        (("--degradation", "gauss"), "must start with a resizer"),
    ],
)
def test_compare_command_usage_errors(invoke, rgb_png, tmp_path, args, message):
    result = invoke("compare", rgb_png, "-o", tmp_path / "s.png", *args, weights=False)
    assert result.exit_code == 2 and message in result.stderr


# -- the published baseline -----------------------------------------------------------------


@pytest.mark.slow
@needs_lpips
@pytest.mark.skipif(not SET5.is_dir(), reason=f"Set5 not found at {SET5}")
def test_set5_bicubic_baseline_through_evaluate(tiny):
    from srgan_cli.lpips import LpipsAlex

    result = evaluate.evaluate(evaluate.benchmark_sets([SET5]), tiny, LpipsAlex(LPIPS_WEIGHTS))
    (set5,) = result.sets
    assert set5.images == 5
    assert set5.bicubic_psnr == pytest.approx(28.43, abs=0.01)
    assert set5.bicubic_ssim == pytest.approx(0.811, abs=0.002)
    assert set5.bicubic_lpips == pytest.approx(0.340, abs=0.005)


def test_auto_chooses_from_the_chains_jpeg_and_scores_like_the_forced_model(bench):
    """``--model auto`` in eval: a chain ending in a JPEG at quality 60 goes to real (the
    bytes' tables say so), a clean chain (a lossless PNG) and quality 95 to srgan; each row
    names its model and scores exactly as forcing that model does."""
    from srgan_cli.modelset import load_model

    auto = load_model(precision="fp32")
    sets = evaluate.benchmark_sets([bench])
    for chain, model in [
        ("bicubic+jpeg60", "real"),
        ("bicubic", "srgan"),
        ("bicubic+jpeg95", "srgan"),
    ]:
        chosen = evaluate.evaluate(sets, auto, degradation=chain)
        forced = evaluate.evaluate(sets, auto.members[model], degradation=chain)
        assert chosen.model == "auto"
        assert [row.model for row in chosen.images] == [model] * 3
        assert [row.psnr for row in chosen.images] == [row.psnr for row in forced.images]


def test_eval_record_needs_one_model(invoke, bench):
    refused = invoke("eval", bench, "--record", weights=False)
    assert refused.exit_code == 2 and "--record" in refused.stderr
