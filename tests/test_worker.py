"""``srgan worker`` and ``srgan upscale`` through it: a real worker process, a real socket.

One worker holding the tiny test model serves most tests (module fixture); the tests that
kill a worker or wait for it to go idle start their own in their own runtime directory.
Clients run through CliRunner in this process, or as subprocesses where a signal or
concurrency is the point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
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
from conftest import MIXED_MODELS, make_image, make_mixed_folder
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.worker import client
from srgan_cli.worker.paths import socket_path

pytestmark = pytest.mark.slow

SRGAN = [sys.executable, "-m", "srgan_cli"]
WAIT_S = 60.0


def srgan(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*SRGAN, *args], capture_output=True, timeout=180, **kwargs)


def start_worker(weights: Path, *extra: str) -> dict:
    done = srgan("worker", "start", "--weights", str(weights), *extra)
    assert done.returncode == 0, done.stderr.decode()
    status = client.ask("status")
    assert status is not None
    return status


def jobs_done() -> int:
    status = client.ask("status")
    assert status is not None, "the worker is gone"
    return status["jobs_done"]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def own_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh runtime directory, so a worker started here is this test's alone."""
    folder = Path(tempfile.mkdtemp(prefix="srgw-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    reply = client.ask("stop")
    if reply is not None:
        wait_for(lambda: not os.path.lexists(socket_path()), "the worker to stop")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(tiny_weights: Path) -> Iterator[dict]:
    """One worker holding the tiny model for the module (in the session's private dir)."""
    status = start_worker(tiny_weights, "--idle-timeout", "300")
    yield status
    srgan("worker", "stop")


def upscale(*args: str, stdin: bytes | None = None):
    return CliRunner().invoke(main, ["upscale", *args], input=stdin)


def test_status_without_worker_exits_1(own_runtime_dir: Path) -> None:
    done = srgan("worker", "status")
    assert done.returncode == 1
    assert b"not running" in done.stdout


def test_worker_outputs_are_byte_identical(worker: dict, tiny_weights: Path, tmp_path: Path):
    images = tmp_path / "in"
    make_image(images / "rgb.png", "RGB", (20, 14), seed=1)
    make_image(images / "rgba.png", "RGBA", (12, 10), seed=2)
    make_image(images / "gray.png", "L", (9, 13), seed=3)
    weights = ["--weights", str(tiny_weights)]
    before = jobs_done()
    served = upscale(
        str(images), "-o", str(tmp_path / "w"), "--report", str(tmp_path / "w.json"), *weights
    )
    assert jobs_done() == before + 1
    local = upscale(
        str(images),
        "-o",
        str(tmp_path / "n"),
        "--report",
        str(tmp_path / "n.json"),
        *weights,
        "--no-worker",
    )
    assert served.exit_code == local.exit_code == 0, served.output + local.output
    for name in ("rgb.png", "rgba.png", "gray.png"):
        assert (tmp_path / "w" / name).read_bytes() == (tmp_path / "n" / name).read_bytes()
    assert _report_sans_times(tmp_path / "w.json") == _report_sans_times(tmp_path / "n.json")


def _report_sans_times(path: Path) -> dict:
    report = json.loads(path.read_text())
    for key in ("startup_s", "total_s"):
        report.pop(key)
    for image in report["images"]:
        for key in ("load_s", "infer_s", "save_s", "total_s"):
            image.pop(key)
        image["output"] = Path(image["output"]).name  # the two runs write to two folders
    return report


def test_options_stdin_stdout_and_errors_match(worker: dict, tiny_weights: Path, tmp_path: Path):
    source = make_image(tmp_path / "a.png", "RGB", (16, 12), seed=4)
    weights = ["--weights", str(tiny_weights)]
    options = ["--outscale", "2.5", "--format", "webp", "--quality", "90", "-q"]
    before = jobs_done()
    served = upscale("-", *weights, *options, stdin=source.read_bytes())
    local = upscale("-", *weights, *options, "--no-worker", stdin=source.read_bytes())
    assert served.exit_code == local.exit_code == 0
    assert served.stdout_bytes == local.stdout_bytes and served.stdout_bytes[:4] == b"RIFF"
    assert jobs_done() == before + 1

    target = tmp_path / "exists.png"
    target.write_bytes(b"keep me")
    before = jobs_done()
    exists = [upscale(str(source), "-o", str(target), *weights, *x) for x in ([], ["--no-worker"])]
    missing = [upscale(str(tmp_path / "nope.png"), *weights, *x) for x in ([], ["--no-worker"])]
    assert jobs_done() == before  # nothing to do: decided in the client, the worker not asked
    assert [r.exit_code for r in exists + missing] == [1, 1, 2, 2]
    error = f"Error: {source}: {target} exists (use --overwrite, --update or --skip-existing)"
    assert [r.stderr.splitlines()[0] for r in exists] == [error, error]
    assert target.read_bytes() == b"keep me"
    assert (
        missing[0].stderr
        == missing[1].stderr
        == f"Error: no such file or directory: {tmp_path}/nope.png\n"
    )
    skipped = upscale(str(source), "-o", str(tmp_path / "s.png"), *weights, "--skip-existing")
    again = upscale(str(source), "-o", str(tmp_path / "s.png"), *weights, "--skip-existing")
    assert skipped.exit_code == again.exit_code == 0 and "1 skipped" in again.stderr


def test_client_path_imports_nothing_heavy(worker: dict, tiny_weights: Path, tmp_path: Path):
    source = make_image(tmp_path / "a.png", "RGB", (8, 8), seed=5)
    code = (
        "import sys\n"
        "from srgan_cli.cli import main\n"
        f"main(['upscale', {str(source)!r}, '--weights', {str(tiny_weights)!r}, '-q'],"
        " standalone_mode=False)\n"
        "print(sorted(m for m in ('numpy', 'PIL', 'keras', 'tensorflow') if m in sys.modules))"
    )
    before = jobs_done()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert jobs_done() == before + 1
    assert (tmp_path / "a_x4.png").is_file()


def test_foreign_model_runs_in_process(worker: dict, tiny_weights: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    for path in (tiny_weights, tiny_weights.with_name("tiny.json")):
        shutil.copy(path, other / path.name)  # same bytes, another file: not what it holds
    source = make_image(tmp_path / "a.png", "RGB", (8, 8), seed=6)
    before = jobs_done()
    result = upscale(str(source), "--weights", str(other / tiny_weights.name), "-q")
    assert result.exit_code == 0, result.output
    assert jobs_done() == before
    assert (tmp_path / "a_x4.png").is_file()


def test_ray_calls_stay_in_process(worker: dict, tiny_weights: Path, tmp_path: Path) -> None:
    from srgan_cli.cli.upscale import upscale as command

    source = make_image(tmp_path / "a.png", "RGB", (8, 8), seed=6)
    argv = [str(source), "--weights", str(tiny_weights), "--ray", "local"]
    before = jobs_done()
    with command.make_context("upscale", argv) as ctx:
        assert client.forward(ctx) is None
    assert jobs_done() == before


def test_concurrent_clients_each_get_their_own_result(worker: dict, tiny_weights, tmp_path):
    from srgan_cli.pipeline import Upscaler

    sources = [
        make_image(tmp_path / f"c{i}.png", "RGB", (10 + i, 9), seed=10 + i) for i in range(4)
    ]
    before = jobs_done()
    clients = [
        subprocess.Popen([*SRGAN, "upscale", str(s), "--weights", str(tiny_weights), "-q"])
        for s in sources
    ]
    assert [c.wait(timeout=120) for c in clients] == [0, 0, 0, 0]
    assert jobs_done() == before + 4
    reference = Upscaler(weights=tiny_weights)
    for source in sources:
        produced = np.asarray(Image.open(source.with_name(f"{source.stem}_x4.png")))
        assert np.array_equal(produced, reference.upscale(np.asarray(Image.open(source))))


def test_ctrl_c_cancels_the_call_in_the_worker(worker: dict, tiny_weights: Path, tmp_path: Path):
    sources = [make_image(tmp_path / "in" / f"b{i}.png", "RGB", (64, 64), seed=i) for i in range(6)]
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *SRGAN,
            "upscale",
            str(tmp_path / "in"),
            "-o",
            str(out),
            "--weights",
            str(tiny_weights),
            "--tile",
            "8",
        ],
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: (out / "b0.png").exists(), "the first output")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.decode().strip().endswith("Interrupted")
    written = sorted(p.name for p in out.iterdir())
    assert len(written) < len(sources), "the call ran to the end: nothing was cancelled"
    assert all(not name.startswith(".") for name in written), written  # no temp file left
    for name in written:
        Image.open(out / name).load()  # every file there is whole
    assert upscale(str(sources[0]), "--weights", str(tiny_weights), "-q").exit_code == 0
    assert client.ask("status") is not None  # the worker lives on


def test_start_refuses_to_replace_a_worker_with_other_weights(worker: dict) -> None:
    done = srgan("worker", "start", "--model", "srresnet")
    assert done.returncode == 1
    assert b"already running; srgan worker stop first" in done.stderr
    assert client.ask("status")["pid"] == worker["pid"]


def test_socket_and_directory_are_private(worker: dict) -> None:
    path = Path(worker["socket"])
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_peer_of_another_uid_is_refused(worker: dict) -> None:
    """Even with the directory and socket opened up, a peer of another uid gets nothing."""
    python = Path("/usr/bin/python3")  # stdlib is all it needs; ours may be under /root
    if not python.exists():
        pytest.skip("no system python another user can run")
    path = Path(worker["socket"])
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (path.parent, path.parent.parent, path)}
    for p in modes:
        p.chmod(0o777)
    try:
        answered = subprocess.run(
            [str(python), "-c", ASK_STATUS, str(path)],
            user=65534,
            group=65534,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == "b''\n"  # connected, then closed without a byte of reply
    assert client.ask("status") is not None


ASK_STATUS = """
import socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sys.argv[1])
request = b'{"op": "status"}'
conn.settimeout(10)
try:
    conn.sendall(b"Q" + len(request).to_bytes(4, "big") + request)
    print(conn.recv(1))
except (BrokenPipeError, ConnectionResetError):  # closed before or while we spoke
    print(b"")
"""


def test_stale_socket_is_removed_and_call_runs_in_process(own_runtime_dir, tiny_weights, tmp_path):
    path = socket_path()
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening: a worker killed without cleanup
    stale.close()
    source = make_image(tmp_path / "a.png", "RGB", (8, 8), seed=7)
    result = upscale(str(source), "--weights", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a_x4.png").is_file()
    assert not os.path.lexists(path)


def test_worker_killed_mid_call_client_finishes(own_runtime_dir, tiny_weights, tmp_path):
    """The worker writes a.png, then blocks reading a FIFO; killed there, the client redoes
    the whole call in-process (removing a.png first, so it does not count as existing)."""
    pid = start_worker(tiny_weights)["pid"]
    first = make_image(tmp_path / "a.png", "RGB", (12, 10), seed=8)
    fifo = tmp_path / "b.png"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*SRGAN, "upscale", str(first), str(fifo), "-o", str(out), "--weights", str(tiny_weights)],
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: (out / "a.png").exists(), "the worker to write a.png")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), "the worker to die")  # else it could take the bytes
    second = make_image(tmp_path / "b_src.png", "RGB", (9, 11), seed=9)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(second.read_bytes()))
    feeder.start()  # blocks until the in-process rerun opens the FIFO
    _, stderr = proc.communicate(timeout=120)
    feeder.join(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert "2 images" in stderr.decode() and "failed" not in stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert client.ask("status") is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_over_stale_socket_then_idle_exit(own_runtime_dir: Path, tiny_weights: Path):
    path = socket_path()
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    start_worker(tiny_weights, "--idle-timeout", "1")
    wait_for(lambda: not os.path.lexists(socket_path()), "the idle worker to exit")
    assert srgan("worker", "status").returncode == 1


def test_auto_starts_one_worker_for_parallel_calls(own_runtime_dir, tiny_weights, tmp_path):
    sources = [make_image(tmp_path / f"m{i}.png", "RGB", (8, 8), seed=20 + i) for i in range(3)]
    env = {**os.environ, "SRGAN_WORKER": "auto"}
    clients = [
        subprocess.Popen([*SRGAN, "upscale", str(s), "--weights", str(tiny_weights), "-q"], env=env)
        for s in sources
    ]
    assert [c.wait(timeout=180) for c in clients] == [0, 0, 0]
    assert jobs_done() == 3
    assert all(s.with_name(f"{s.stem}_x4.png").is_file() for s in sources)


def test_a_default_worker_holds_auto_and_routes_each_image(own_runtime_dir: Path, tmp_path):
    """``srgan worker start`` with no model holds auto (both models, loaded once); a mixed
    folder sent over the socket gets each image's own model, byte for byte as in-process,
    and a call forcing one of the two is served by the same worker."""
    folder = make_mixed_folder(tmp_path / "in")
    done = srgan("worker", "start", "--precision", "fp32")
    assert done.returncode == 0, done.stderr.decode()
    status = client.ask("status")
    assert status is not None and status["model"] == "auto"
    assert "srgan.weights.h5" in status["weights"] and "real.weights.h5" in status["weights"]
    fp32 = ["--precision", "fp32"]
    served = upscale(
        str(folder), "-o", str(tmp_path / "w"), "--report", str(tmp_path / "w.json"), *fp32
    )
    assert served.exit_code == 0, served.output
    assert jobs_done() == 1
    rows = json.loads((tmp_path / "w.json").read_text())["images"]
    assert {Path(row["input"]).name: row["model"] for row in rows} == MIXED_MODELS
    local = upscale(str(folder), "-o", str(tmp_path / "n"), *fp32, "--no-worker")
    assert local.exit_code == 0, local.output
    for name in MIXED_MODELS:
        png = f"{Path(name).stem}.png"
        assert (tmp_path / "w" / png).read_bytes() == (tmp_path / "n" / png).read_bytes()
    forced = upscale(
        str(folder / "q60.jpg"), "-o", str(tmp_path / "r.png"), "--model", "real", *fp32
    )
    assert forced.exit_code == 0 and jobs_done() == 2
    assert (tmp_path / "r.png").read_bytes() == (tmp_path / "n" / "q60.png").read_bytes()
