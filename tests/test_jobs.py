"""``srgan_cli.jobs``: which inputs become which outputs, without loading a model.

Planning only looks at names, suffixes and file times, so the "images" here are empty files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import modules_loaded_by

from srgan_cli import jobs
from srgan_cli.errors import UsageError
from srgan_cli.jobs import Job, find_inputs, output_is_up_to_date, plan_jobs, same_file


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def outputs(planned: list[Job]) -> list[Path | None]:
    return [job.output for job in planned]


def test_image_suffixes():
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
    assert suffixes == jobs.IMAGE_SUFFIXES


def test_single_file_default_is_beside_it_with_the_suffix(tmp_path):
    photo = tmp_path / "photo.jpg"
    touch(photo)
    assert plan_jobs([str(photo)], None, recursive=False) == [
        Job(photo, tmp_path / "photo_x4.png", str(photo))
    ]
    planned = plan_jobs([str(photo)], None, recursive=False, suffix="_big")
    assert outputs(planned) == [tmp_path / "photo_big.png"]


def test_single_file_output_file_stdout_and_directory(tmp_path):
    photo = tmp_path / "photo.jpg"
    touch(photo)
    (tmp_path / "existing").mkdir()
    as_file = plan_jobs([str(photo)], str(tmp_path / "big.png"), recursive=False)
    assert outputs(as_file) == [tmp_path / "big.png"]
    assert outputs(plan_jobs([str(photo)], "-", recursive=False)) == [None]
    into_dir = plan_jobs([str(photo)], str(tmp_path / "existing"), recursive=False)
    assert outputs(into_dir) == [tmp_path / "existing" / "photo.png"]
    new_dir = plan_jobs([str(photo)], f"{tmp_path / 'new'}/", recursive=False)
    assert outputs(new_dir) == [tmp_path / "new" / "photo.png"]


def test_directory_takes_visible_images_and_keeps_subfolders_with_r(tmp_path):
    src = tmp_path / "src"
    touch(src / "b.PNG", src / "a.jpg", src / ".hidden.png", src / "notes.txt", src / "sub/c.png")
    out = tmp_path / "out"
    flat = plan_jobs([str(src)], str(out), recursive=False)
    assert outputs(flat) == [out / "a.png", out / "b.png"]
    deep = plan_jobs([str(src)], str(out), recursive=True)
    assert outputs(deep) == [out / "a.png", out / "b.png", out / "sub" / "c.png"]


def test_glob_keeps_paths_below_its_fixed_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(Path("shots/x/one.png"), Path("shots/x/y/two.png"), Path("shots/skip.txt"))
    planned = plan_jobs(["shots/**/*.png"], "big", recursive=False)
    assert [job.input for job in planned] == [Path("shots/x/one.png"), Path("shots/x/y/two.png")]
    assert outputs(planned) == [Path("big/x/one.png"), Path("big/x/y/two.png")]


def test_duplicates_are_planned_once(tmp_path):
    photo = tmp_path / "photo.png"
    touch(photo)
    found = find_inputs(
        [str(photo), str(tmp_path / "." / "photo.png"), str(tmp_path)], recursive=False
    )
    assert len(found) == 1


def test_stdin_goes_to_stdout_and_must_be_alone(tmp_path):
    assert plan_jobs([jobs.STDIN], None, recursive=False) == [Job(None, None, jobs.STDIN_NAME)]
    photo = tmp_path / "photo.png"
    touch(photo)
    with pytest.raises(UsageError, match="must be the only INPUT"):
        find_inputs([jobs.STDIN, str(photo)], recursive=False)


def test_outputs_inside_the_output_directory_are_not_inputs(tmp_path):
    src = tmp_path / "photos"
    touch(src / "a.png", src / "big" / "a.png")
    planned = plan_jobs([str(src)], str(src / "big"), recursive=True)
    assert [job.input for job in planned] == [src / "a.png"]
    only_outputs = tmp_path / "only"
    touch(only_outputs / "big" / "a.png")
    with pytest.raises(UsageError, match="no images outside the output directory"):
        plan_jobs([str(only_outputs)], str(only_outputs / "big"), recursive=True)


@pytest.mark.parametrize(
    ("patterns", "output", "message"),
    [
        (["missing.png"], None, "no such file or directory: missing.png"),
        (["empty"], None, r"no images in directory empty \(use -r"),
        (["*.webp"], None, "no images match '\\*.webp'"),
        (["a.png", "b.png"], "out.png", "-o out.png is a file"),
        (["a.png", "b.png"], "-", "-o - is a file"),
    ],
)
def test_usage_errors(tmp_path, monkeypatch, patterns, output, message):
    monkeypatch.chdir(tmp_path)
    touch(Path("a.png"), Path("b.png"))
    Path("empty").mkdir()
    with pytest.raises(UsageError, match=message):
        plan_jobs(patterns, output, recursive=False)


def test_output_is_up_to_date_follows_make(tmp_path):
    source, output = tmp_path / "in.png", tmp_path / "out.png"
    touch(source, output)
    os.utime(source, (1_000, 1_000))
    os.utime(output, (2_000, 2_000))
    assert output_is_up_to_date(output, source)
    os.utime(output, (500, 500))
    assert not output_is_up_to_date(output, source)
    assert not output_is_up_to_date(None, source)
    assert not output_is_up_to_date(output, None)
    assert not output_is_up_to_date(tmp_path / "never.png", source)


def test_same_file_sees_hard_links(tmp_path):
    source = tmp_path / "in.png"
    touch(source)
    os.link(source, tmp_path / "link.png")
    assert same_file(tmp_path / "link.png", source)
    assert not same_file(tmp_path / "other.png", source)
    assert not same_file(source, None)


def test_pipeline_job_is_the_same_class():
    from srgan_cli import pipeline

    assert pipeline.Job is Job


def test_importing_jobs_stays_light():
    heavy = ("numpy", "PIL", "click", "keras", "tensorflow")
    assert modules_loaded_by("srgan_cli.jobs", heavy) == []


def test_output_format_names_outputs_and_the_extension_names_the_format(tmp_path):
    touch(tmp_path / "in" / "a.png", tmp_path / "in" / "b.jpg")
    beside = plan_jobs(
        [str(tmp_path / "in" / "a.png")], None, recursive=False, output_format="webp"
    )
    assert [(j.output.name, j.format) for j in beside] == [("a_x4.webp", "webp")]
    batch = plan_jobs(
        [str(tmp_path / "in")], str(tmp_path / "out"), recursive=False, output_format="tiff"
    )
    assert [(j.output.name, j.format) for j in batch] == [("a.tif", "tiff"), ("b.tif", "tiff")]
    single = plan_jobs([str(tmp_path / "in" / "a.png")], str(tmp_path / "x.JPEG"), recursive=False)
    assert [(j.output.name, j.format) for j in single] == [("x.JPEG", "jpeg")]
    stdout = plan_jobs([str(tmp_path / "in" / "a.png")], "-", recursive=False, output_format="jpeg")
    assert [(j.output, j.format) for j in stdout] == [(None, "jpeg")]
    with pytest.raises(UsageError, match=r"unknown image extension '\.gif'"):
        plan_jobs([str(tmp_path / "in" / "a.png")], str(tmp_path / "x.gif"), recursive=False)
    with pytest.raises(UsageError, match="--format png contradicts"):
        plan_jobs(
            [str(tmp_path / "in" / "a.png")],
            str(tmp_path / "x.jpg"),
            recursive=False,
            output_format="png",
        )


# -- issue 29: reruns beside the inputs ------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "suffix"),
    [(4, "_x4"), (4.0, "_x4"), (2.0, "_x2"), (1.5, "_x1.5"), (0.25, "_x0.25"), (8, "_x8")],
)
def test_default_suffix_is_the_real_scale_as_written(scale, suffix):
    assert jobs.default_suffix(scale) == suffix


def test_beside_outputs_are_named_by_the_output_scale(tmp_path):
    touch(tmp_path / "a.png")
    assert outputs(plan_jobs([str(tmp_path / "a.png")], None, recursive=False, scale=2)) == [
        tmp_path / "a_x2.png"
    ]
    assert outputs(plan_jobs([str(tmp_path)], None, recursive=False, scale=1.5)) == [
        tmp_path / "a_x1.5.png"
    ]
    assert jobs.DEFAULT_SUFFIX == "_x4"


def test_earlier_outputs_in_a_directory_are_not_inputs(tmp_path):
    names = ["a.png", "a_x4.png", "a_x4_x4.png", "b.jpg", "b_x2.webp", "b_x1.5.tif", "c_x4.png"]
    touch(*(tmp_path / name for name in names), tmp_path / "sub" / "a_x4.png")
    plan = jobs.plan_run([str(tmp_path)], None, recursive=True)
    found = sorted(job.input.relative_to(tmp_path).as_posix() for job in plan.jobs)
    # c_x4.png has no c.* beside it, and sub/ has no a.*: both are inputs
    assert found == ["a.png", "b.jpg", "c_x4.png", "sub/a_x4.png"]
    assert plan.ignored == 4 and plan.missing == {}


def test_earlier_outputs_are_left_out_of_globs_but_named_files_are_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(Path("a.png"), Path("a_x4.png"), Path("a_big.png"))
    globbed = jobs.plan_run(["*.png"], "out", recursive=False)
    assert [job.input for job in globbed.jobs] == [Path("a.png"), Path("a_big.png")]
    assert globbed.ignored == 1
    custom = jobs.plan_run(["*.png"], None, recursive=False, suffix="_big")
    assert [job.input for job in custom.jobs] == [Path("a.png")] and custom.ignored == 2
    named = jobs.plan_run(["a.png", "a_x4.png"], "out", recursive=False)
    assert [job.input for job in named.jobs] == [Path("a.png"), Path("a_x4.png")]
    assert named.ignored == 0


def test_output_without_extension(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(Path("a.png"), Path("b.png"), Path("file"))
    Path("existing").mkdir()
    with pytest.raises(UsageError, match=r"-o newdir has no extension: write -o newdir\.png"):
        plan_jobs(["a.png"], "newdir", recursive=False)
    assert not Path("newdir").exists()
    assert outputs(plan_jobs(["a.png"], "newdir/", recursive=False)) == [Path("newdir/a.png")]
    assert outputs(plan_jobs(["a.png"], "existing", recursive=False)) == [Path("existing/a.png")]
    with pytest.raises(UsageError, match="file is a file, not a directory"):
        plan_jobs(["a.png"], "file/", recursive=False)
    several = plan_jobs(["a.png", "b.png"], "newdir", recursive=False)
    assert outputs(several) == [Path("newdir/a.png"), Path("newdir/b.png")]
    same_twice = plan_jobs(["a.png", "./a.png"], "newdir", recursive=False)
    assert outputs(same_twice) == [Path("newdir/a.png")]


def test_missing_among_several_is_named_and_the_rest_planned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(Path("a.png"))
    Path("empty").mkdir()
    plan = jobs.plan_run(["a.png", "missing.png", "empty", "*.gif"], "multi/", recursive=False)
    assert outputs(plan.jobs) == [Path("multi/a.png")]
    assert plan.missing == {
        "missing.png": "no such file or directory: missing.png",
        "empty": "no images in directory empty (use -r to descend into subdirectories)",
        "*.gif": "no images match '*.gif'",
    }
    with pytest.raises(UsageError, match=r"no such file or directory: missing\.png"):
        plan_jobs(["a.png", "missing.png"], "multi/", recursive=False)  # strict
    with pytest.raises(UsageError, match=r"missing\.png; no such file or directory: gone\.png"):
        jobs.plan_run(["missing.png", "gone.png"], "multi/", recursive=False)
    with pytest.raises(UsageError, match=r"^no such file or directory: missing\.png$"):
        jobs.plan_run(["a.png", "missing.png"], "out.png", recursive=False)  # a typo


def _claims_on(tmp_path: Path, **flags: bool) -> jobs.OutputDecision:
    job = Job(tmp_path / "in.png", tmp_path / "out.png", "in.png")
    return jobs.OutputClaims([job], **flags).check(job)


@pytest.mark.parametrize("output_age", ["newer", "older"])
def test_existing_output_policies(tmp_path, output_age):
    touch(tmp_path / "in.png", tmp_path / "out.png")
    os.utime(tmp_path / "in.png", (1_000, 1_000))
    os.utime(tmp_path / "out.png", (2_000, 2_000) if output_age == "newer" else (500, 500))
    plain = _claims_on(tmp_path, overwrite=False, skip_existing=False)
    assert plain.error is not None and "--update" in plain.error
    assert _claims_on(tmp_path, overwrite=True, skip_existing=False) == jobs.OutputDecision()
    assert _claims_on(tmp_path, overwrite=False, skip_existing=True).skip
    update = _claims_on(tmp_path, overwrite=False, skip_existing=False, update=True)
    assert update.error is None and update.skip == (output_age == "newer")


def test_existing_output_options_exclude_each_other():
    with pytest.raises(UsageError, match="not --overwrite and --update"):
        jobs.check_existing_choice(overwrite=True, skip_existing=False, update=True)
    jobs.check_existing_choice(overwrite=False, skip_existing=True, update=False)
