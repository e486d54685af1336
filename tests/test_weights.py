"""Weights: shipped models verify and load; wrong hashes and architectures are refused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import settled_copy

from srgan_cli import weights
from srgan_cli.errors import WeightsError

REPO = Path(__file__).resolve().parents[1]
TRAINING_FILE = re.compile(r"training/[\w.-]+/[\w.-]+\.weights\.h5")


def test_unknown_model_is_a_one_line_error():
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        weights.resolve("nope")


def test_missing_file_and_missing_card(tmp_path: Path):
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(weights=tmp_path / "x.weights.h5")
    (tmp_path / "x.weights.h5").write_bytes(b"data")
    with pytest.raises(WeightsError, match="no card"):
        weights.resolve(weights=tmp_path / "x.weights.h5")


@pytest.mark.parametrize("name", weights.MODEL_NAMES)
def test_shipped_models_match_their_cards(name: str):
    path = weights.resolve(name)
    card = weights.verify(path)
    assert card.name == name
    assert card.training.get("steps", 0) > 0, "a shipped model must say how far it was trained"


def _recorded_sha256(run: Path) -> dict[str, str]:
    """``training/<run>/snapshots.sha256`` (``sha256sum`` format) as file name -> hash."""
    listed = run / "snapshots.sha256"
    assert listed.is_file(), f"{listed.relative_to(REPO)} is missing"
    pairs = (line.split() for line in listed.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


@pytest.mark.parametrize("name", weights.MODEL_NAMES)
def test_card_lineage_traces_without_the_run_snapshots(name: str):
    """Run snapshots are not in git: a card says which run and step its weights came from, and
    every generator it names under ``training/`` has its sha256 recorded in that run's folder
    (and matches the hash the card itself gives, where it gives one)."""
    if not (REPO / "training").is_dir():
        pytest.skip("training/ is not here (installed from a wheel)")
    training = weights.verify(weights.resolve(name)).training
    assert Path(training["config"]["run_dir"]).name, "the card must name its run"
    assert training["steps"] > 0
    named = sorted(set(TRAINING_FILE.findall(json.dumps(training))))
    for path in named:
        assert Path(path).name in _recorded_sha256(REPO / Path(path).parent), path
    blend = training.get("interpolation") or {}
    for path, digest in zip(blend.get("with", []), blend.get("with_sha256", []), strict=True):
        if path.startswith("training/"):
            assert _recorded_sha256(REPO / Path(path).parent)[Path(path).name] == digest


def test_tampered_weights_are_refused(tiny_weights: Path, tmp_path: Path):
    copy = tmp_path / tiny_weights.name
    shutil.copy(tiny_weights, copy)
    shutil.copy(weights.card_path(tiny_weights), weights.card_path(copy))
    with open(copy, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(WeightsError, match="does not match its card"):
        weights.verify(copy)


def test_wrong_architecture_is_refused(tiny_weights: Path, tmp_path: Path):
    copy = tmp_path / tiny_weights.name
    shutil.copy(tiny_weights, copy)
    card = json.loads(weights.card_path(tiny_weights).read_text())
    card["architecture"]["channels"] = 16
    weights.card_path(copy).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="does not fit architecture"):
        weights.load_generator(copy)


def test_export_then_load_round_trip(tiny_weights: Path):
    model, card = weights.load_generator(tiny_weights)
    assert card.sha256 == weights.sha256_of(tiny_weights)
    assert model.count_params() > 0


def test_record_metrics_keeps_the_hash(tiny_weights: Path, tmp_path: Path):
    copy = tmp_path / tiny_weights.name
    shutil.copy(tiny_weights, copy)
    shutil.copy(weights.card_path(tiny_weights), weights.card_path(copy))
    weights.record_metrics(copy, {"Set5": {"psnr": 30.0}})
    card = weights.verify(copy)
    assert card.metrics == {"Set5": {"psnr": 30.0}}
    assert card.sha256 == weights.sha256_of(copy)


def test_a_settled_file_is_hashed_once_until_it_changes(tmp_path: Path, hash_reads):
    path = settled_copy(_write(tmp_path / "fresh.bin", b"a" * 64), tmp_path / "w.bin")
    first = weights.sha256_of(path)
    assert weights.sha256_of(path) == first and hash_reads["w.bin"] == 1  # remembered
    stamp = path.stat().st_mtime_ns
    _write(path, b"b" * 64)  # same size, same inode, and the old mtime put back
    os.utime(path, ns=(stamp, stamp))
    assert weights.sha256_of(path) == hashlib.sha256(b"b" * 64).hexdigest() != first
    assert hash_reads["w.bin"] == 2


def test_a_file_written_just_now_is_hashed_every_time(tmp_path: Path, hash_reads):
    path = _write(tmp_path / "new.bin", b"a" * 64)  # a rewrite may not move its stat yet
    for _ in range(2):
        assert weights.sha256_of(path) == hashlib.sha256(b"a" * 64).hexdigest()
    assert hash_reads["new.bin"] == 2


def test_a_file_dated_back_is_hashed_every_time_until_settled(tmp_path: Path, hash_reads):
    """``cp -p`` or tar dates the mtime back, not the ctime: the file is as new as its last
    write, and a rewrite within one ctime tick would leave its stat as it was."""
    path = _write(tmp_path / "dated.bin", b"a" * 64)
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))
    for _ in range(2):
        assert weights.sha256_of(path) == hashlib.sha256(b"a" * 64).hexdigest()
    assert hash_reads["dated.bin"] == 2


def _write(path: Path, data: bytes) -> Path:
    with open(path, "r+b" if path.exists() else "wb") as fh:  # in place: the inode is kept
        fh.write(data)
    return path
