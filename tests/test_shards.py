"""--shard I/N: parsing, stable hashing, disjoint and complete parts, and the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_image
from hypothesis import given
from hypothesis import strategies as st

from srgan_cli.cli import main
from srgan_cli.errors import UsageError
from srgan_cli.jobs import Job, plan_jobs
from srgan_cli.shards import Shard, parse_shard, select_shard, shard_key, shard_of


def job(output: str | None, source: str | None = "in.png") -> Job:
    return Job(
        None if source is None else Path(source),
        None if output is None else Path(output),
        source or "<stdin>",
    )


@pytest.mark.parametrize(
    ("spec", "expected"), [("1/1", (1, 1)), ("3/4", (3, 4)), (" 2/5 ", (2, 5))]
)
def test_parse_shard_accepts_i_of_n(spec: str, expected: tuple[int, int]) -> None:
    assert parse_shard(spec) == Shard(*expected)


@pytest.mark.parametrize(
    "spec", ["0/3", "4/3", "1/0", "0/0", "-1/3", "x", "1/", "/3", "1/3/5", "1.5/3", ""]
)
def test_parse_shard_refuses_anything_else(spec: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_shard(spec)
    assert caught.value.exit_code == 2


paths = st.lists(
    st.from_regex(r"[a-z]{1,6}(/[a-z0-9]{1,6}){0,2}\.png", fullmatch=True), unique=True, max_size=40
)


@given(paths, st.integers(min_value=1, max_value=7))
def test_shards_are_disjoint_and_complete(names: list[str], count: int) -> None:
    jobs = [job(f"out/{name}") for name in names]
    parts = [select_shard(jobs, Shard(i, count), "out") for i in range(1, count + 1)]
    chosen = [j for part in parts for j in part]
    assert sorted(chosen, key=lambda j: str(j.output)) == sorted(jobs, key=lambda j: str(j.output))
    assert len(chosen) == len(jobs)  # nothing in two parts


@given(paths, paths, st.integers(min_value=2, max_value=7))
def test_adding_files_moves_no_other_file(names: list[str], more: list[str], count: int) -> None:
    before = [job(f"out/{name}") for name in names]
    after = before + [job(f"out/{name}") for name in more if name not in names]
    for index in range(1, count + 1):
        kept = select_shard(after, Shard(index, count), "out")
        assert [j for j in kept if j in before] == select_shard(before, Shard(index, count), "out")


def test_key_is_relative_to_the_output_root_so_mount_points_agree() -> None:
    here = shard_key(job("/mnt/a/out/x/y.png"), "/mnt/a/out")
    there = shard_key(job("results/x/y.png"), "results")
    assert here == there == "x/y.png"


def test_jobs_without_an_output_root_use_the_planned_path_and_stdout_uses_the_input() -> None:
    assert shard_key(job("photos/./a_x4.png"), None) == "photos/a_x4.png"
    assert shard_key(job(None, "photos/a.png"), "-") == "photos/a.png"
    assert shard_key(job(None, None), None) == "-"


def test_shard_of_is_the_same_in_another_python_with_another_hash_seed() -> None:
    keys = ["a.png", "deep/er/b.png", "ünïcode/ç.png"]
    code = (
        "import json, sys; from srgan_cli.shards import shard_of; "
        "print(json.dumps([shard_of(k, 5) for k in json.loads(sys.argv[1])]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(keys)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [shard_of(k, 5) for k in keys]


def test_bad_shard_spec_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png")
    for spec in ("0/3", "4/3", "junk"):
        result = CliRunner().invoke(
            main, ["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--shard", spec]
        )
        assert result.exit_code == 2, result.output
        assert "--shard" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    """Nine small images in two folders (enough that three shards are all non-empty)."""
    for i in range(9):
        make_image(tmp_path / "in" / ("sub" if i % 3 else "") / f"p{i}.png", size=(8, 6), seed=i)
    return tmp_path / "in"


def upscale(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["upscale", *map(str, args)])
    return result.exit_code, result.output


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_shards_write_exactly_what_one_unsharded_run_writes(
    photo_tree: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    model = ("--weights", tiny_weights, "--precision", "fp32", "-r", "-q")
    assert upscale(photo_tree, "-o", tmp_path / "whole", *model)[0] == 0
    sizes = []
    for index in (1, 2, 3):
        code, _ = upscale(photo_tree, "-o", tmp_path / "parts", *model, "--shard", f"{index}/3")
        assert code == 0
        sizes.append(len(tree(tmp_path / "parts")))
    assert tree(tmp_path / "parts") == tree(tmp_path / "whole")
    assert 0 < sizes[0] < sizes[1] < sizes[2]  # each shard added files, none did everything


@pytest.mark.slow
def test_skip_existing_rerun_of_one_shard_redoes_only_its_missing_outputs(
    photo_tree: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    out = tmp_path / "out"
    model = ("--weights", tiny_weights, "--precision", "fp32", "-r", "-q")
    for index in (1, 2):
        assert upscale(photo_tree, "-o", out, *model, "--shard", f"{index}/2")[0] == 0
    jobs = plan_jobs([str(photo_tree)], str(out), recursive=True)
    mine = select_shard(jobs, Shard(1, 2), str(out))
    lost = mine[0].output
    assert lost is not None
    lost.unlink()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    report = tmp_path / "r.json"
    code, _ = upscale(
        photo_tree, "-o", out, *model, "--shard", "1/2", "--skip-existing", "--report", report
    )
    assert code == 0
    rows = json.loads(report.read_text())["images"]
    assert [row["output"] for row in rows] == [str(j.output) for j in mine]
    assert [row["output"] for row in rows if not row["skipped"]] == [str(lost)]
    assert lost.is_file()
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing else rewritten
