"""The ``srgan`` command through click's CliRunner, plus real subprocesses of the entry point."""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MIXED_MODELS, make_image, make_mixed_folder, modules_loaded_by
from PIL import Image

from srgan_cli import __version__, imageio, pipeline, tiling
from srgan_cli.cli import main, options


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def test_single_file_with_output(run, rgb_png, tmp_path):
    out = tmp_path / "big.png"
    result = run(rgb_png, "-o", out)
    assert result.exit_code == 0, result.output
    assert size_of(out) == (48, 40)
    assert result.stdout == ""
    assert result.stderr.startswith("srgan: 1 image (1 tiny), ")
    assert result.stderr.count("\n") == 1


def test_default_output_beside_input(run, rgb_png, tmp_path):
    assert run(rgb_png).exit_code == 0
    assert size_of(tmp_path / "rgb_x4.png") == (48, 40)
    assert run(rgb_png, "--suffix", "-big", "-q").stderr == ""
    assert (tmp_path / "rgb-big.png").exists()


def test_directory_to_output_directory(run, tmp_path):
    src = tmp_path / "in"
    make_image(src / "a.png", seed=1)
    make_image(src / "b.JPG", seed=2)
    make_image(src / "sub" / "c.png", seed=3)
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.png").write_bytes(b"ignored")

    flat = run(src, "-o", tmp_path / "flat")
    assert flat.exit_code == 0, flat.output
    assert sorted(p.name for p in (tmp_path / "flat").rglob("*.png")) == ["a.png", "b.png"]

    deep = run(src, "-r", "-o", tmp_path / "deep")
    assert deep.exit_code == 0, deep.output
    found = sorted(
        p.relative_to(tmp_path / "deep").as_posix() for p in (tmp_path / "deep").rglob("*")
    )
    assert found == ["a.png", "b.png", "sub", "sub/c.png"]


def test_quoted_glob_with_double_star(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_image(Path("shots/a.png"), seed=1)
    make_image(Path("shots/2024/b.png"), seed=2)
    make_image(Path("shots/2024/x/c.png"), seed=3)
    make_image(Path("elsewhere/d.png"), seed=4)
    result = run("shots/**/*.png", "-o", "big")
    assert result.exit_code == 0, result.output
    found = sorted(p.as_posix() for p in Path("big").rglob("*.png"))
    assert found == ["big/2024/b.png", "big/2024/x/c.png", "big/a.png"]


def test_outputs_inside_the_input_directory_are_not_inputs(run, tmp_path):
    src = tmp_path / "in"
    make_image(src / "a.png")
    assert run(src, "-r", "-o", src / "big").exit_code == 0
    again = run(src, "-r", "-o", src / "big", "--skip-existing")
    assert again.exit_code == 0, again.output
    assert "0 images" in again.stderr and "1 skipped" in again.stderr
    found = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png"))
    assert found == ["a.png", "big/a.png"]


def test_single_file_into_a_directory(run, rgb_png, tmp_path):
    assert run(rgb_png, "-o", f"{tmp_path / 'new'}/").exit_code == 0
    assert size_of(tmp_path / "new" / "rgb.png") == (48, 40)
    gray = make_image(tmp_path / "g.png", "L")
    assert run(gray, "-o", tmp_path / "new").exit_code == 0
    assert size_of(tmp_path / "new" / "g.png") == (48, 40)


def test_duplicate_inputs_are_done_once(run, rgb_png, tmp_path):
    result = run(rgb_png, rgb_png, tmp_path / "." / "rgb.png", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "srgan: 1 image (1 tiny)," in result.stderr


def test_stdin_to_stdout(run, rgb_png):
    result = run("-", input=rgb_png.read_bytes())
    assert result.exit_code == 0, result.output
    with Image.open(io.BytesIO(result.stdout_bytes)) as img:
        assert img.size == (48, 40)
    assert result.stderr.startswith("srgan: 1 image")


def test_dash_output_is_stdout(run, rgba_png):
    result = run(rgba_png, "-o", "-", "-q")
    assert result.exit_code == 0
    with Image.open(io.BytesIO(result.stdout_bytes)) as img:
        assert (img.mode, img.size) == ("RGBA", (48, 40))
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ["no_such_dir/*.png"],
        ["missing.png"],
        ["{rgb}", "--tile", "-1"],
        ["{rgb}", "--precision", "fp16"],
        ["{rgb}", "--compress-level", "10"],
        ["{rgb}", "{gray}", "-o", "out.png"],
        ["{rgb}", "--report", "r.txt"],
        ["{rgb}", "-", "-o", "outdir"],
        ["{rgb}", "--model", "srgan"],
    ],
)
def test_usage_errors_exit_2(run, rgb_png, gray_png, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(rgb=rgb_png, gray=gray_png) for a in args]
    result = run(*argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*_x4.png"))


def test_one_corrupt_input_exits_1_and_others_are_written(run, tmp_path, corrupt_png):
    good = [make_image(tmp_path / f"g{i}.png", seed=i) for i in range(2)]
    result = run(good[0], corrupt_png, good[1], "-o", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(corrupt_png) in errors[0]
    assert "1 failed" in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["g0.png", "g1.png"]


def test_output_onto_input_is_refused(run, rgb_png):
    before = rgb_png.read_bytes()
    result = run(rgb_png, "-o", rgb_png, "--overwrite")
    assert result.exit_code == 1
    assert "refusing to overwrite input" in result.stderr and str(rgb_png) in result.stderr
    assert rgb_png.read_bytes() == before


def test_existing_output_needs_a_flag(run, rgb_png, tmp_path):
    assert run(rgb_png).exit_code == 0
    again = run(rgb_png)
    assert again.exit_code == 1 and "--skip-existing" in again.stderr
    skipped = run(rgb_png, "--skip-existing")
    assert skipped.exit_code == 0 and "1 skipped" in skipped.stderr
    assert run(rgb_png, "--overwrite").exit_code == 0


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_report(run, tmp_path, rgb_png, corrupt_png, suffix):
    report = tmp_path / f"r{suffix}"
    started = time.perf_counter()
    result = run(rgb_png, corrupt_png, "-o", tmp_path / "out", "--report", report)
    wall = time.perf_counter() - started
    assert result.exit_code == 1
    keys = {f.name for f in dataclasses.fields(pipeline.ImageResult)}
    if suffix == ".json":
        data = json.loads(report.read_text())
        assert set(data) == {
            "version",
            "model",
            "arch",
            "scale",
            "precision",
            "threads",
            "startup_s",
            "total_s",
            "images",
        }
        assert data["model"] == "tiny" and data["precision"] in ("fp32", "bf16")
        assert (data["arch"], data["scale"]) == ("SRResNet", 4)
        # total_s is the processing after startup: the two add up to at most the wall time
        assert data["startup_s"] > 0 and data["total_s"] > 0
        assert data["startup_s"] + data["total_s"] <= wall
        assert [set(i) for i in data["images"]] == [keys, keys - {"error"}]
    else:
        with open(report, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [set(r) for r in rows] == [keys, keys]
        assert rows[0]["error"] and not rows[1]["error"]


def test_help_mentions_examples_and_makefile():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    assert "%_x4.png: %.png ; srgan upscale $< -o $@" in top.output
    sub = runner.invoke(main, ["upscale", "--help"])
    assert sub.exit_code == 0
    assert "srgan upscale photos/ -o big/" in sub.output
    assert "$< -o $@" in sub.output
    version = runner.invoke(main, ["--version"])
    assert version.output.strip() == f"srgan {__version__}"


def test_help_defaults_match_the_library():
    assert options.DEFAULT_TILE_PAD == tiling.DEFAULT_TILE_PAD
    assert options.DEFAULT_COMPRESS_LEVEL == imageio.DEFAULT_COMPRESS_LEVEL
    assert options.DEFAULT_MAX_PIXELS == imageio.DEFAULT_MAX_PIXELS
    assert options.PRECISIONS == pipeline.PRECISIONS


def test_importing_cli_stays_light():
    heavy = ("numpy", "PIL", "keras", "tensorflow", "tqdm")
    assert modules_loaded_by("srgan_cli.cli", heavy) == []


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "srgan_cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage: srgan" in out.stdout


def test_info_json():
    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["models"]) == {"srgan", "srresnet", "real"}
    for model in data["models"].values():
        assert model["status"] in ("ok", "missing", "invalid")
    assert set(data["cpu_features"]) == {"avx512f", "avx512_bf16", "amx_bf16"}
    assert data["threads"]["cpu_count"] == os.cpu_count()
    assert data["tensorflow"] and data["keras"]


def test_info_text():
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0
    assert result.output.startswith(f"srgan {__version__}\n")
    assert "tensorflow" in result.output and "cpu:" in result.output


def test_weights_error_is_one_line(tmp_path, rgb_png):
    bogus = tmp_path / "bogus.weights.h5"
    bogus.write_bytes(b"x")
    result = CliRunner().invoke(main, ["upscale", str(rgb_png), "--weights", str(bogus)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


# -- real processes -------------------------------------------------------------------------

SRGAN = shutil.which("srgan")
needs_entry_point = pytest.mark.skipif(SRGAN is None, reason="srgan entry point not installed")


@pytest.mark.slow
@needs_entry_point
def test_installed_entry_point(tiny_weights, rgb_png, tmp_path):
    out = tmp_path / "out.png"
    done = subprocess.run(
        [SRGAN, "upscale", str(rgb_png), "-o", str(out), "--weights", str(tiny_weights)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert size_of(out) == (48, 40)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one summary line


@pytest.mark.slow
@needs_entry_point
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_batch_then_resume(tiny_weights, tmp_path, stop):
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(30):
        make_image(src / f"img{i:02d}.png", size=(40, 40), seed=i)
    argv = [SRGAN, "upscale", str(src), "-o", str(out), "--weights", str(tiny_weights)]
    proc = subprocess.Popen(
        [*argv, "--tile", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "batch finished before it could be interrupted"
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"Interrupted" in stderr and b"Traceback" not in stderr
    assert not list(out.glob(".*.tmp"))
    written = list(out.glob("*.png"))
    assert 0 < len(written) < 30
    for path in written:
        with Image.open(path) as img:
            img.verify()

    resumed = subprocess.run([*argv, "--skip-existing", "-q"], capture_output=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(out.glob("*.png"))) == 30


# -- issue 29: reruns that just work ----------------------------------------------------------


def images_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def test_second_run_beside_the_inputs(run, tmp_path):
    photos = tmp_path / "photos"
    for index, name in enumerate(("a", "b")):
        make_image(photos / f"{name}.png", size=(8, 8), seed=index)
    first = run(photos)
    assert first.exit_code == 0, first.output
    assert images_under(photos) == ["a.png", "a_x4.png", "b.png", "b_x4.png"]

    plain = run(photos)  # the outputs are not inputs: each one just exists
    assert plain.exit_code == 1
    assert plain.stderr.count("exists (use --overwrite, --update or --skip-existing)") == 2
    assert "refusing to overwrite input" not in plain.stderr
    assert plain.stderr.splitlines()[-1].endswith("2 failed, 2 earlier outputs ignored")

    skipped = run(photos, "--skip-existing")
    assert skipped.exit_code == 0, skipped.output
    assert skipped.stderr.startswith("srgan: 0 images, ")
    assert skipped.stderr.rstrip().endswith("2 skipped, 2 earlier outputs ignored")

    a_out, b_out = photos / "a_x4.png", photos / "b_x4.png"
    for path in (a_out, b_out):
        os.utime(path, (1_000_000, 1_000_000))
    os.utime(photos / "b.png", (500_000, 500_000))  # b is older than its output, a newer
    updated = run(photos, "--update")
    assert updated.exit_code == 0, updated.output
    assert "srgan: 1 image (1 tiny), " in updated.stderr and "1 skipped" in updated.stderr
    assert a_out.stat().st_mtime > 1_000_000 and b_out.stat().st_mtime == 1_000_000
    again = run(photos, "--update", "-q")
    assert (again.exit_code, again.stderr) == (0, "")
    assert images_under(photos) == ["a.png", "a_x4.png", "b.png", "b_x4.png"]


def test_existing_output_options_are_one_choice(run, rgb_png):
    result = run(rgb_png, "--overwrite", "--update")
    assert result.exit_code == 2
    assert "give one of --overwrite, --skip-existing, --update" in result.stderr


@pytest.mark.parametrize(
    ("outscale", "name", "size"),
    [("2", "rgb_x2.png", (24, 20)), ("1.5", "rgb_x1.5.png", (18, 15)), ("4", "rgb_x4.png", None)],
)
def test_outscale_names_the_output(run, rgb_png, tmp_path, outscale, name, size):
    result = run(rgb_png, "--outscale", outscale)
    assert result.exit_code == 0, result.output
    assert size_of(tmp_path / name) == (size or (48, 40))
    assert sorted(p.name for p in tmp_path.glob("rgb_x*")) == [name]


def test_output_without_extension(run, rgb_png, gray_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused = run(rgb_png, "-o", "newdir")
    assert refused.exit_code == 2
    assert "-o newdir has no extension: write -o newdir.png for a file, or -o newdir/" in (
        refused.stderr
    )
    assert not Path("newdir").exists()
    assert run(rgb_png, "-o", "newdir/").exit_code == 0
    assert size_of(Path("newdir/rgb.png")) == (48, 40)
    several = run(rgb_png, gray_png, "-o", "other")
    assert several.exit_code == 0, several.output
    assert images_under(Path("other")) == ["gray.png", "rgb.png"]


def test_missing_among_several_inputs(run, rgb_png, gray_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(rgb_png, "missing.png", gray_png, "gone/*.png", "-o", "multi/")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: no such file or directory: missing.png",
        "Error: no images match 'gone/*.png'",
    ]
    assert result.stderr.splitlines()[-1].startswith("srgan: 2 images (2 tiny), ")
    assert "2 failed" in result.stderr
    assert images_under(Path("multi")) == ["gray.png", "rgb.png"]
    nothing = run("missing.png", "gone.png", "-o", "multi2/")
    assert nothing.exit_code == 2 and not Path("multi2").exists()
    assert "missing.png; no such file or directory: gone.png" in nothing.stderr


def test_ignored_options_are_said(run, rgb_png, tmp_path, tiny_weights):
    quality = run(rgb_png, "--quality", "80", "-q")
    assert quality.exit_code == 0
    assert quality.stderr == (
        "Warning: --quality only applies to JPEG and WebP; ignored for png output\n"
    )
    assert "Warning" not in run(rgb_png, "-o", tmp_path / "x.jpg", "--quality", "80").stderr
    level = run(rgb_png, "-o", tmp_path / "y.webp", "--compress-level", "9", "-q")
    assert level.stderr.startswith("Warning: --compress-level only applies to PNG")
    gan = tmp_path / "gan"
    gan.mkdir()
    shutil.copy(tiny_weights, gan / "gan.weights.h5")
    card = json.loads(tiny_weights.with_name("tiny.json").read_text())
    card.update(name="gan", training={"stage": "gan"})
    (gan / "gan.json").write_text(json.dumps(card))
    argv = ["upscale", str(rgb_png), "--tta", "--skip-existing", "--weights"]
    tta = CliRunner().invoke(main, [*argv, str(gan / "gan.weights.h5")])
    assert tta.exit_code == 0, tta.output
    assert tta.stderr.startswith("Warning: --tta averages away the texture of the GAN model gan")
    plain = CliRunner().invoke(main, [*argv, str(tiny_weights)])
    assert "Warning" not in plain.stderr


def test_format_refusal_comes_before_the_model(rgba_png, tmp_path):
    """Bogus weights: had the model been loaded, the error would be about them."""
    bogus = tmp_path / "bogus.weights.h5"
    bogus.write_bytes(b"x")
    argv = ["upscale", str(rgba_png), "-o", str(tmp_path / "x.jpg"), "--weights", str(bogus)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {rgba_png}: has an alpha channel, which JPEG cannot store; write png or webp "
        "instead"
    )
    assert "1 failed" in result.stderr and not (tmp_path / "x.jpg").exists()


_CHILD = """
import sys
from srgan_cli.cli import main
try:
    main(sys.argv[1:], prog_name="srgan")
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(repr((code, heavy)), file=sys.stderr)
"""


def child_run(*args: object) -> tuple[int, list[str], str]:
    """``srgan ARGS`` in a fresh interpreter: exit code, which of tensorflow/keras it
    imported, and its stderr before that report."""
    argv = [sys.executable, "-c", _CHILD, *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    *lines, report = done.stderr.strip().splitlines()
    code, heavy = ast.literal_eval(report)
    return code, heavy, "\n".join(lines)


def test_nothing_to_do_imports_no_tensorflow(tiny_weights, tmp_path):
    photos = tmp_path / "photos"
    for index in range(3):
        make_image(photos / f"p{index}.png", size=(8, 8), seed=index)
        (photos / f"p{index}_x4.png").write_bytes(b"an earlier output")
    weights = ["--weights", tiny_weights]
    assert child_run("upscale", photos, "--skip-existing", *weights)[:2] == (0, [])
    code, heavy, stderr = child_run("upscale", photos, "--update", *weights)
    assert (code, heavy) == (0, [])
    assert stderr.endswith("3 skipped, 3 earlier outputs ignored")
    rgba = make_image(tmp_path / "rgba.png", "RGBA", size=(8, 8))
    code, heavy, stderr = child_run("upscale", rgba, "-o", tmp_path / "x.jpg", *weights)
    assert (code, heavy) == (1, []) and "JPEG cannot store" in stderr
    assert child_run("info")[:2] == (0, [])
    assert child_run("info", "--json", "--runtime")[:2] == (0, ["keras", "tensorflow"])


@pytest.mark.slow
def test_library_keeps_tensorflow_start_up_off_stderr(tiny_weights):
    code = (
        "import sys, numpy as np; from srgan_cli import Upscaler; "
        "print('ours', file=sys.stderr); "
        f"print(Upscaler(weights={str(tiny_weights)!r}).upscale(np.zeros((4, 4, 3), np.uint8))"
        ".shape, file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SRGAN_DEBUG")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "ours\n(16, 16, 3)\n"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_from_the_readme_survives_a_changed_input(tiny_weights, tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rule = "%_x4.png: %.png ; srgan upscale $< -o $@ --overwrite"
    srcs = "SRCS := $(filter-out %_x4.png,$(wildcard *.png))\nall: $(SRCS:.png=_x4.png)\n"
    assert srcs + rule in readme
    srgan = f"{sys.executable} -m srgan_cli"
    makefile = (
        srcs + rule.replace("srgan upscale", f"{srgan} upscale") + f" -q --weights {tiny_weights}\n"
    )
    (tmp_path / "Makefile").write_text(makefile)
    for index, name in enumerate(("a", "b")):
        make_image(tmp_path / f"{name}.png", size=(8, 8), seed=index)

    def make() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make"], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    first = make()
    assert first.returncode == 0, first.stdout + first.stderr
    assert images_under(tmp_path) == ["a.png", "a_x4.png", "b.png", "b_x4.png"]
    assert "Nothing to be done" in make().stdout
    built = {name: (tmp_path / name).stat().st_mtime_ns for name in ("a_x4.png", "b_x4.png")}
    later = time.time() + 5
    os.utime(tmp_path / "a.png", (later, later))
    changed = make()
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "a_x4.png" in changed.stdout and "b_x4.png" not in changed.stdout
    assert (tmp_path / "a_x4.png").stat().st_mtime_ns != built["a_x4.png"]
    assert (tmp_path / "b_x4.png").stat().st_mtime_ns == built["b_x4.png"]
    assert images_under(tmp_path) == ["a.png", "a_x4.png", "b.png", "b_x4.png"]


# -- --model auto ---------------------------------------------------------------------------


def auto_upscale(*args: object, input: bytes | None = None):
    """``srgan upscale`` in-process with the shipped models (no worker)."""
    argv = ["upscale", *map(str, args), "--no-worker", "--precision", "fp32"]
    return CliRunner().invoke(main, argv, input=input, catch_exceptions=False)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_auto_is_the_default_and_the_report_names_each_model(tmp_path, suffix):
    folder = make_mixed_folder(tmp_path / "in")
    report = tmp_path / f"r{suffix}"
    result = auto_upscale(folder, "-o", tmp_path / "auto", "--report", report)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("srgan: 6 images (3 real, 3 srgan), "), result.stderr
    if suffix == ".json":
        data = json.loads(report.read_text())
        assert data["model"] == "auto"
        rows = data["images"]
    else:
        with open(report, newline="") as handle:
            rows = list(csv.DictReader(handle))
    assert {Path(row["input"]).name: row["model"] for row in rows} == MIXED_MODELS
    if suffix == ".csv":
        return
    for model in ("srgan", "real"):  # forcing a model: the same bytes as auto's choice
        forced = auto_upscale(folder, "-o", tmp_path / model, "--model", model)
        assert forced.exit_code == 0 and f"(6 {model})" in forced.stderr
        for name, chosen in MIXED_MODELS.items():
            same = (tmp_path / model / f"{Path(name).stem}.png").read_bytes() == (
                tmp_path / "auto" / f"{Path(name).stem}.png"
            ).read_bytes()
            assert same is (chosen == model), (name, model)


def test_auto_on_stdin_reads_the_piped_header(tmp_path):
    folder = make_mixed_folder(tmp_path)
    for name in ("q60.jpg", "lossless.webp"):
        data = (folder / name).read_bytes()
        auto = auto_upscale("-", input=data)
        forced = auto_upscale("-", "--model", MIXED_MODELS[name], input=data)
        assert auto.exit_code == forced.exit_code == 0
        assert f"(1 {MIXED_MODELS[name]})" in auto.stderr
        assert auto.stdout_bytes == forced.stdout_bytes
