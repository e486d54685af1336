"""srgan upscale --ray: a real local Ray, a real two-node cluster simulated on this machine, and
a real actor process killed mid-run. Outputs must match the single-process run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import MIXED_MODELS, compact_x1_state, make_image, make_mixed_folder, save_safetensors
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.errors import SrganError, UsageError
from srgan_cli.jobs import plan_jobs
from srgan_cli.ray_engine import RaySettings, check_actor_fits, default_actor_count
from srgan_cli.weights import card_path

ray = pytest.importorskip("ray")

GIB = 1 << 30


def node(cpus: float, memory: float, alive: bool = True) -> dict:
    """A ``ray.nodes()`` entry, as Ray reports it (only the fields the engine reads)."""
    return {"Alive": alive, "Resources": {"CPU": cpus, "memory": memory}}


def test_default_actor_count_leaves_a_cpu_per_node_and_respects_memory() -> None:
    settings = RaySettings(cpus_per_actor=1, memory_per_actor=2 * GIB)
    nodes = [node(8, 64 * GIB), node(8, 5 * GIB), node(16, 64 * GIB, alive=False)]
    assert default_actor_count(nodes, settings) == 7 + 2
    wide = RaySettings(cpus_per_actor=3, memory_per_actor=2 * GIB)
    assert default_actor_count([node(8, 64 * GIB)], wide) == 2
    assert default_actor_count([node(1, 64 * GIB)], settings) == 1  # never zero


def test_an_actor_no_node_can_hold_is_a_usage_error_not_a_hang() -> None:
    settings = RaySettings(cpus_per_actor=4, memory_per_actor=2 * GIB)
    check_actor_fits([node(2, 64 * GIB), node(8, 64 * GIB)], settings)
    for nodes in ([node(2, 64 * GIB)], [node(8, 64 * GIB, alive=False)], []):
        with pytest.raises(UsageError, match="no Ray node has 4 CPUs"):
            check_actor_fits(nodes, settings)


def test_bad_ray_settings_are_usage_errors() -> None:
    for bad in ({"cpus_per_actor": 0}, {"actors": 0}):
        with pytest.raises(UsageError):
            RaySettings(**bad)


def test_stdin_or_stdout_with_ray_is_refused_before_ray_starts(rgb_png: Path) -> None:
    result = CliRunner().invoke(main, ["upscale", str(rgb_png), "-o", "-", "--ray", "local"])
    assert result.exit_code == 2
    assert "--ray" in result.output
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Colour, alpha and grey images of a few sizes in two folders, and one broken file."""
    root = tmp_path_factory.mktemp("photos")
    for i, (mode, size) in enumerate([("RGB", (12, 10)), ("RGBA", (9, 7)), ("L", (8, 8))] * 2):
        make_image(root / ("sub" if i % 2 else "") / f"p{i}.png", mode, size, seed=i)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return root


@pytest.fixture(scope="module")
def reference(photos: Path, tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process run the Ray runs must reproduce (its report is reference/r.json)."""
    out = tmp_path_factory.mktemp("reference")
    args = [photos, "-r", "-o", out / "img", "--report", out / "r.json"]
    assert upscale(*args, *model_args(tiny_weights))[0] == 1  # broken.png
    return out


def model_args(weights: Path) -> tuple[str, ...]:
    return ("--weights", str(weights), "--precision", "fp32", "-q")


def upscale(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["upscale", *map(str, args)])
    return result.exit_code, result.output


def assert_same_images(expected: Path, actual: Path) -> None:
    """Same files, same modes and sizes, pixels within 1 grey level (thread counts differ)."""
    names = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(actual) for p in actual.rglob("*") if p.is_file())
    for name in names:
        with Image.open(expected / name) as want, Image.open(actual / name) as got:
            assert (got.mode, got.size) == (want.mode, want.size), name
            difference = np.abs(np.asarray(want, np.int32) - np.asarray(got, np.int32))
            assert difference.max() <= 1, name


def report_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())["images"]


def assert_same_report_rows(expected: Path, actual: Path, out: Path, ref_out: Path) -> None:
    want, got = report_rows(expected), report_rows(actual)
    assert [set(row) for row in got] == [set(row) for row in want]
    assert [row["input"] for row in got] == [row["input"] for row in want]
    assert [row["output"] for row in got] == [
        row["output"].replace(str(ref_out), str(out)) for row in want
    ]
    assert all(row["node"] for row in got)
    (failed,) = [row for row in got if "error" in row]
    assert "broken.png" in failed["error"]


@pytest.mark.slow
def test_ray_local_writes_what_one_process_writes(
    photos: Path, reference: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    out, report = tmp_path / "img", tmp_path / "r.json"
    args = [photos, "-r", "-o", out, "--report", report, "--ray", "local", "--ray-actors", "2"]
    code, output = upscale(*args, *model_args(tiny_weights))
    assert code == 1, output  # broken.png failed, the rest were written
    assert_same_images(reference / "img", out)
    assert_same_report_rows(reference / "r.json", report, out, reference / "img")
    assert not ray.is_initialized()  # the Ray it started is shut down


@pytest.fixture
def two_node_cluster() -> Iterator[str]:
    """A head and one worker node, one CPU each, as separate raylets on this machine.

    Ray Data starts feeding rows as soon as one actor is up; on a busy machine the other
    can still be importing TensorFlow when the rows run out. Waiting for the whole pool
    makes "both nodes did work" a fact to check rather than a race.
    """
    from ray.cluster_utils import Cluster
    from ray.data import DataContext

    context = DataContext.get_current()
    saved_wait, context.wait_for_min_actors_s = context.wait_for_min_actors_s, 300
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
        context.wait_for_min_actors_s = saved_wait


@pytest.mark.slow
def test_two_node_cluster_writes_what_one_process_writes(
    photos: Path, reference: Path, tiny_weights: Path, tmp_path: Path, two_node_cluster: str
) -> None:
    out, report = tmp_path / "img", tmp_path / "r.json"
    args = [photos, "-r", "-o", out, "--report", report, "--ray", two_node_cluster]
    code, output = upscale(*args, "--ray-actors", "2", *model_args(tiny_weights))
    assert code == 1, output
    assert_same_images(reference / "img", out)
    assert_same_report_rows(reference / "r.json", report, out, reference / "img")
    assert len({row["node"] for row in report_rows(report)}) == 2  # both nodes did work


@pytest.mark.slow
def test_ray_local_reads_and_writes_uris(
    photos: Path, reference: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    """file:// is pyarrow's LocalFileSystem reached by URI: the actors list nothing, read
    each input's bytes and write each output through pyarrow, as they would on s3://."""
    out, report = tmp_path / "img", tmp_path / "r.json"
    args = [f"file://{photos}", "-r", "-o", f"file://{out}", "--report", report, "--ray", "local"]
    code, output = upscale(*args, "--ray-actors", "2", *model_args(tiny_weights))
    assert code == 1, output
    assert f"Error: file://{photos}/broken.png: " in output
    assert_same_images(reference / "img", out)  # same files: no temporary file left either
    want, got = report_rows(reference / "r.json"), report_rows(report)
    assert [row["input"] for row in got] == [f"file://{row['input']}" for row in want]
    ref_out = str(reference / "img")
    assert [row["output"] for row in got] == [
        row["output"].replace(ref_out, f"file://{out}") for row in want
    ]
    assert all(row["node"] for row in got)


def test_uri_outputs_are_decided_on_the_driver_without_starting_ray(
    tiny_weights: Path, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "p.png")
    source, out = f"file://{tmp_path}/in", f"file://{tmp_path}/out"
    assert upscale(source, "-o", out, *model_args(tiny_weights))[0] == 0
    code, output = upscale(source, "-o", out, "--ray", "local", *model_args(tiny_weights))
    assert code == 1
    assert f"{out}/p.png exists (use --overwrite, --update or --skip-existing)" in output
    report = tmp_path / "r.json"
    args = ["--ray", "local", "--skip-existing", "--report", report]
    assert upscale(source, "-o", out, *args, *model_args(tiny_weights))[0] == 0
    assert [row["skipped"] for row in report_rows(report)] == [True]
    input_as_output = [f"{source}/p.png", "-o", tmp_path / "in" / "p.png", "--overwrite"]
    code, output = upscale(*input_as_output, "--ray", "local", *model_args(tiny_weights))
    assert code == 1
    assert "refusing to overwrite input file" in output
    assert not ray.is_initialized()


def test_an_unknown_uri_scheme_is_one_line_exit_2_before_ray_starts(rgb_png: Path) -> None:
    result = CliRunner().invoke(main, ["upscale", "nosuch://bucket/a.png", "--ray", "local"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: nosuch://bucket/a.png: Unrecognized filesystem type in URI: nosuch://bucket/a.png"
    ]
    assert not ray.is_initialized()


def free_ports(count: int) -> list[int]:
    """Ports free right now, so this cluster cannot collide with another Ray on the machine."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def started_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node started the way users start one (``ray start --head``); its address.

    With token authentication, as a user's cluster has once a token exists, but with a
    token of this test's own (``cluster_auth``): ``ray start`` turns authentication on only
    when it finds a token, and the first ``ray.init()`` on a machine writes one to
    ~/.ray/auth_token, so without this the test passed or failed with the machine's history
    (a fresh HOME, as in CI: no token, a cluster without authentication, a driver asking
    for it) and would share a token with whatever else runs there.

    ``--block`` keeps the ``ray start`` process in the foreground as the owner of the
    cluster's processes: SIGTERM to it (by its pid) stops exactly this cluster, where
    ``ray stop`` would stop every Ray on the machine, other people's included. Its own
    session, so a last-resort SIGKILL of its process group reaches only what it started.
    """
    gcs, client, agent, agent_grpc, runtime_env, metrics = free_ports(6)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: socket paths are limited
    log = tmp_path_factory.mktemp("ray-start") / "ray-start.log"
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    command += ["--num-cpus", "2", "--disable-usage-stats", "--include-dashboard", "false"]
    command += ["--temp-dir", temp_dir, "--port", str(gcs)]
    for option, port in [
        ("--ray-client-server-port", client),
        ("--dashboard-agent-listen-port", agent),
        ("--dashboard-agent-grpc-port", agent_grpc),
        ("--runtime-env-agent-port", runtime_env),
        ("--metrics-export-port", metrics),
    ]:
        command += [option, str(port)]
    # SIGTERM drains a node for 30 s by default (for Serve replicas); nothing to drain here.
    env = {**os.environ, **cluster_auth(), "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    with open(log, "wb") as handle:
        head = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert head.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.5)
        yield f"127.0.0.1:{gcs}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


CLUSTER_TOKEN = secrets.token_hex(32)
"""The ``started_cluster``'s token (Ray's own format), private to this test run."""


def cluster_auth() -> dict[str, str]:
    """Token authentication with ``CLUSTER_TOKEN``, whatever ~/.ray holds or lacks."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": CLUSTER_TOKEN}


def cluster_env(address: str) -> dict[str, str]:
    """The environment a user on a cluster node has.

    RAY_ADDRESS is what 'auto' takes first (without it Ray would look for any cluster on
    this machine, another test run's included). With an address, Ray sends a token only
    when asked to (RAY_AUTH_MODE=token), and the cluster's token is ``cluster_auth``'s. Ray
    reads both when a process starts, hence fresh processes rather than this one.
    """
    return {**os.environ, "RAY_ADDRESS": address, **cluster_auth()}


def cluster_node_ids(address: str) -> list[str]:
    code = "import ray; ray.init(); print(*[n['NodeID'] for n in ray.nodes() if n['Alive']])"
    found = subprocess.run(
        [sys.executable, "-c", code],
        env=cluster_env(address),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return found.stdout.split()


@pytest.mark.slow
def test_ray_auto_joins_a_cluster_started_with_ray_start(
    photos: Path, reference: Path, tiny_weights: Path, tmp_path: Path, started_cluster: str
) -> None:
    out, report = tmp_path / "img", tmp_path / "r.json"
    args = [photos, "-r", "-o", out, "--report", report, "--ray", "auto"]
    command = [sys.executable, "-m", "srgan_cli", "upscale", *map(str, args)]
    run = subprocess.run(
        [*command, *model_args(tiny_weights)],
        env=cluster_env(started_cluster),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr  # broken.png failed, the rest were written
    assert_same_images(reference / "img", out)
    assert_same_report_rows(reference / "r.json", report, out, reference / "img")
    (node_id,) = cluster_node_ids(started_cluster)  # the cluster outlived the driver
    nodes = {row["node"] for row in report_rows(report)}
    assert nodes == {f"{socket.gethostname()}/{node_id[:8]}"}


def map_worker_pids() -> list[int]:
    """PIDs of Ray Data actor processes started under this test process (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if not handle.read().startswith(b"ray::MapWorker"):
                    continue
            if os.getpid() in ancestors(int(entry)):
                found.append(int(entry))
        except OSError:  # the process ended while we looked
            continue
    return found


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds actors in /proc")
def test_actor_killed_mid_run_is_retried_and_no_output_is_missing_or_partial(
    tiny_weights: Path, tmp_path: Path
) -> None:
    from srgan_cli.pipeline import Upscaler, run_jobs
    from srgan_cli.ray_engine import run_on_ray

    for i in range(16):
        make_image(tmp_path / "in" / f"p{i:02d}.png", size=(64, 48), seed=i)
    out = tmp_path / "out"
    killed: list[tuple[list[int], int]] = []

    def kill_an_actor_once_the_first_output_exists() -> None:
        deadline = time.monotonic() + 120
        while not any(out.glob("*.png")) and time.monotonic() < deadline:
            time.sleep(0.005)
        pids = map_worker_pids()
        done = len(list(out.glob("*.png")))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed.append((pids, done))

    killer = threading.Thread(target=kill_an_actor_once_the_first_output_exists, daemon=True)
    killer.start()
    jobs = plan_jobs([str(tmp_path / "in")], str(out), recursive=False)
    kwargs = {"weights": tiny_weights, "precision": "fp32"}
    run = run_on_ray(jobs, RaySettings(actors=1), upscaler_kwargs=kwargs)
    killer.join(timeout=5)
    ((pids, done_at_kill),) = killed
    assert pids and done_at_kill < len(jobs)  # the kill really was mid-run
    assert [r.error for r in run.results] == [None] * len(jobs)
    expected = plan_jobs([str(tmp_path / "in")], str(tmp_path / "ref"), recursive=False)
    run_jobs(Upscaler(**kwargs), expected)
    assert_same_images(tmp_path / "ref", out)  # every output there, every one whole


def test_existing_outputs_are_decided_on_the_driver_without_starting_ray(
    tiny_weights: Path, tmp_path: Path
) -> None:
    for i in range(2):
        make_image(tmp_path / "in" / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    assert upscale(tmp_path / "in", "-o", out, *model_args(tiny_weights))[0] == 0
    code, output = upscale(tmp_path / "in", "-o", out, "--ray", "local", *model_args(tiny_weights))
    assert code == 1
    assert output.count("exists (use --overwrite, --update or --skip-existing)") == 2
    report = tmp_path / "r.json"
    args = ["--ray", "local", "--skip-existing", "--report", report]
    assert upscale(tmp_path / "in", "-o", out, *args, *model_args(tiny_weights))[0] == 0
    assert [row["skipped"] for row in report_rows(report)] == [True, True]


@pytest.mark.slow
def test_an_actor_that_cannot_start_is_one_line_naming_why(
    tiny_weights: Path, tmp_path: Path
) -> None:
    from srgan_cli.ray_engine import run_on_ray

    make_image(tmp_path / "in" / "p.png")
    jobs = plan_jobs([str(tmp_path / "in")], str(tmp_path / "out"), recursive=False)
    with pytest.raises(SrganError, match=r"^Ray run failed: tile must be >= 0"):
        run_on_ray(
            jobs, RaySettings(actors=1), upscaler_kwargs={"weights": tiny_weights, "tile": -1}
        )
    assert not ray.is_initialized()


@pytest.mark.slow
def test_ray_local_auto_gives_each_image_its_own_model(tmp_path: Path) -> None:
    """Each actor holds both models; every row names the one its file asked for, and the
    images are what one process writes."""
    folder = make_mixed_folder(tmp_path / "in")
    here, there = tmp_path / "here", tmp_path / "there"
    assert upscale(folder, "-o", here, "--precision", "fp32", "-q")[0] == 0
    args = [folder, "-o", there, "--report", tmp_path / "r.json", "--ray", "local"]
    code, output = upscale(*args, "--ray-actors", "1", "--precision", "fp32", "-q")
    assert code == 0, output
    assert json.loads((tmp_path / "r.json").read_text())["model"] == "auto"
    rows = report_rows(tmp_path / "r.json")
    assert {Path(row["input"]).name: row["model"] for row in rows} == MIXED_MODELS
    assert_same_images(here, there)


@pytest.mark.slow
def test_ray_reads_a_new_foreign_file_once_on_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its card is made once (for the output names and the early check); the actors convert
    it in their own processes, which this count does not see."""
    pytest.importorskip("safetensors")
    from srgan_cli import importer

    source = save_safetensors(tmp_path / "new.safetensors", compact_x1_state(seed=6))
    reads: list[str] = []
    real = importer.read_state

    def counting_read_state(path: Path):
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(importer, "read_state", counting_read_state)
    make_image(tmp_path / "in" / "p.png")
    args = [tmp_path / "in", "-o", tmp_path / "out", "--ray", "local", "--ray-actors", "1"]
    code, output = upscale(*args, "--weights", source, "--precision", "fp32", "-q")
    assert code == 0, output
    assert reads == ["new.safetensors"]
    with Image.open(tmp_path / "out" / "p.png") as written:
        assert written.size == (12, 10)  # the x1 model


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_bad_weights_fail_on_the_driver_before_ray_starts(
    damage: str, tiny_weights: Path, rrdb_x2_file: Path, tmp_path: Path
) -> None:
    """Ours are verified (their card was only read); a foreign file that cannot be read
    says why, as loading would."""
    if damage == "tampered":
        weights = tmp_path / tiny_weights.name
        shutil.copy(card_path(tiny_weights), card_path(weights))
        data = bytearray(tiny_weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
        expected, exit_code = "does not match its card", 1  # WeightsError
    else:
        weights = tmp_path / "cut.safetensors"
        weights.write_bytes(rrdb_x2_file.read_bytes()[:1000])
        expected, exit_code = "cut.safetensors", 2  # ModelFileError
    make_image(tmp_path / "in" / "p.png")
    args = [tmp_path / "in", "-o", tmp_path / "out", "--ray", "local", "--weights", weights]
    code, output = upscale(*args)
    assert code == exit_code and expected in output, output
    assert not ray.is_initialized() and not (tmp_path / "out").exists()
