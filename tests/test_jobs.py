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
