"""remote.Uri: URI inputs and outputs through a real pyarrow filesystem (file:// on tmp_path),
planned by the same rules as local paths and run in-process by the same pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_image, modules_loaded_by

from srgan_cli.cli import main
from srgan_cli.errors import UsageError
from srgan_cli.jobs import output_is_up_to_date, plan_jobs
from srgan_cli.remote import Uri, is_uri

pytest.importorskip("pyarrow")


def uri(path: Path) -> str:
    return f"file://{path}"


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, hidden ones (a temporary file left behind) included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_is_uri_only_for_scheme_slash_slash() -> None:
    assert is_uri("s3://bucket/a.png") and is_uri("file:///tmp/a.png")
    assert not any(map(is_uri, ["a.png", "/tmp/a.png", "C:\\a.png", "-", "photos/**/*.png"]))


def test_uri_plans_like_the_local_path(tmp_path: Path) -> None:
    for i, folder in enumerate(["", "sub", ".hidden"]):
        make_image(tmp_path / "in" / folder / f"p{i}.png", seed=i)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    local = plan_jobs([str(tmp_path / "in")], str(tmp_path / "out"), recursive=True)
    remote = plan_jobs([uri(tmp_path / "in")], uri(tmp_path / "out"), recursive=True)
    assert [(uri(j.input), uri(j.output), j.format) for j in local] == [
        (str(j.input), str(j.output), j.format) for j in remote
    ]
    (beside,) = plan_jobs([uri(tmp_path / "in" / "p0.png")], None, recursive=False)
    assert str(beside.output) == uri(tmp_path / "in" / "p0_x4.png")
    (named,) = plan_jobs(
        [uri(tmp_path / "in" / "p0.png")], uri(tmp_path / "b.jpg"), recursive=False
    )
    assert (str(named.output), named.format) == (uri(tmp_path / "b.jpg"), "jpeg")


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("nosuch://bucket/a.png", "Unrecognized filesystem type"),
        ("file://relative/a.png", "hostname"),
        ("file:///no/such/dir", "no such file or directory: file:///no/such/dir"),
        ("file:///tmp/a.png?x=1", "options in a URI"),
    ],
)
def test_bad_uris_are_usage_errors(argument: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan_jobs([argument], None, recursive=False)


def test_write_atomic_renames_a_finished_temporary_file(tmp_path: Path) -> None:
    target = Uri.parse(uri(tmp_path / "deep" / "a.png"))
    target.write_atomic(lambda fh: fh.write(b"first"))
    target.write_atomic(lambda fh: fh.write(b"second"))
    assert target.read_bytes() == b"second"
    assert files_under(tmp_path) == ["deep/a.png"]

    def fails_half_way(fh) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        Uri.parse(uri(tmp_path / "b.png")).write_atomic(fails_half_way)
    assert files_under(tmp_path) == ["deep/a.png"]  # nothing half-written, no temp file


def test_up_to_date_compares_uri_and_path_times(tmp_path: Path) -> None:
    source, output = make_image(tmp_path / "a.png"), make_image(tmp_path / "b.png")
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))
    assert output_is_up_to_date(Uri.parse(uri(output)), source)
    assert not output_is_up_to_date(source, Uri.parse(uri(output)))
    assert not output_is_up_to_date(Uri.parse(uri(tmp_path / "missing.png")), source)


def upscale(*args: str | Path, weights: Path) -> tuple[int, str]:
    model = ["--weights", str(weights), "--precision", "fp32", "-q"]
    result = CliRunner().invoke(main, ["upscale", *map(str, args), *model])
    return result.exit_code, result.output


@pytest.mark.slow
def test_uris_in_process_write_what_paths_write_and_keep_the_rules(
    tiny_weights: Path, tmp_path: Path
) -> None:
    for i in range(2):
        make_image(tmp_path / "in" / f"p{i}.png", "RGBA" if i else "RGB", seed=i)
    assert upscale(tmp_path / "in", "-o", tmp_path / "local", weights=tiny_weights)[0] == 0
    out = uri(tmp_path / "remote")
    assert upscale(uri(tmp_path / "in"), "-o", out, weights=tiny_weights)[0] == 0
    assert files_under(tmp_path / "remote") == files_under(tmp_path / "local")
    for name in files_under(tmp_path / "local"):
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()

    code, output = upscale(uri(tmp_path / "in"), "-o", out, weights=tiny_weights)
    assert code == 1
    assert f"{out}/p0.png exists (use --overwrite, --update or --skip-existing)" in output
    assert upscale(uri(tmp_path / "in"), "-o", out, "--skip-existing", weights=tiny_weights)[0] == 0
    source = tmp_path / "in" / "p0.png"
    code, output = upscale(uri(source), "-o", source, "--overwrite", weights=tiny_weights)
    assert code == 1
    assert f"refusing to overwrite input file {source}" in output


def test_importing_remote_stays_light() -> None:
    assert modules_loaded_by("srgan_cli.jobs, srgan_cli.remote", ("pyarrow", "numpy", "ray")) == []
