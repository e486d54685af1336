"""server: the seed's REST API, over real HTTP to a threaded server on a loopback port."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import MIXED_MODELS, make_image, make_mixed_folder
from PIL import Image

from srgan_cli import __version__
from srgan_cli.cli import main
from srgan_cli.cli import serve as serve_cmd
from srgan_cli.errors import SrganError
from srgan_cli.imageio import encode_png, read_image
from srgan_cli.pipeline import Upscaler, upscale_alpha
from srgan_cli.weights import MODEL_CHOICES, WeightCard

pytest.importorskip("flask")
from srgan_cli import server

SEED_METADATA_KEYS = {"id", "name", "description", "type", "source", "license"}
TIMEOUT_S = 60


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        assert self.headers.get_content_type() == "application/json", self.body[:200]
        return json.loads(self.body)

    def image(self) -> Image.Image:
        assert self.status == 200, self.body[:300]
        assert self.headers.get_content_type() == "image/png"
        img = Image.open(io.BytesIO(self.body))
        img.load()
        return img


def request(url: str, method: str = "GET", body: bytes | None = None, headers=None) -> Answer:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, dict[str, str]]:
    """Encode form fields {name: (filename or None for a text field, content)}."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, (filename, content) in fields.items():
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        chunks += [head.encode(), b"\r\n", content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def predict(
    base: str, data: bytes, filename: str = "photo.png", field: str = "image", query: str = ""
) -> Answer:
    body, headers = multipart({field: (filename, data)})
    return request(f"{base}/model/predict{query}", "POST", body, headers)


def png_bytes(tmp_path: Path, mode: str = "RGB", size=(12, 10), seed: int = 0) -> bytes:
    return make_image(tmp_path / f"{mode}-{seed}.png", mode, size, seed).read_bytes()


def reference(upscaler: Upscaler, data: bytes) -> bytes:
    """What the server must answer for ``data``: the library path, in this thread."""
    result = upscaler.upscale_image(read_image(data))
    return encode_png(result.pixels, result.alpha, result.mode, result.icc_profile)


@contextlib.contextmanager
def running(upscaler: Upscaler, **options) -> Iterator[str]:
    """A real threaded server on a free loopback port, in a background thread."""
    httpd = server.create_server(upscaler, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=httpd.serve_forever, name="test-server", daemon=True)
    thread.start()
    try:
        yield server.server_url(httpd)
    finally:
        httpd.shutdown()
        thread.join(TIMEOUT_S)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def upscaler(tiny_weights: Path) -> Upscaler:
    return Upscaler(weights=tiny_weights, precision="fp32")


@pytest.fixture(scope="module")
def base(upscaler: Upscaler) -> Iterator[str]:
    with running(upscaler) as url:
        yield url


# -- the seed's contract ---------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_seed_curl_example(base, tmp_path):
    sample = tmp_path / "samples" / "test_examples" / "low_resolution" / "food.png"
    make_image(sample, "RGB", (16, 10), seed=5)
    relative = sample.relative_to(tmp_path)
    out = tmp_path / "food_high_res.png"
    with open(out, "wb") as stdout:
        done = subprocess.run(
            ["curl", "-F", f"image=@{relative}", "-XPOST", f"{base}/model/predict"],
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT_S,
        )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "RGB", (64, 40))


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_readme_curl_example_works_and_a_failure_leaves_no_file(base, tmp_path):
    """The README's line, as written, from the repository root (the file it posts exists)."""
    readme = (REPO / "README.md").read_text()
    assert 'curl --fail -F "image=@examples/astronaut.png" -o astronaut_x4.png' in readme
    out = tmp_path / "astronaut_x4.png"
    argv = ["curl", "--fail", "-sS", "-F", "image=@examples/astronaut.png", "-o", str(out)]
    done = subprocess.run([*argv, f"{base}/model/predict"], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as img:
        assert img.size == (1024, 1024)
    refused = tmp_path / "refused.png"
    argv[-1] = str(refused)
    bad = subprocess.run([*argv, f"{base}/model/predict?model=nope"], cwd=REPO)
    assert bad.returncode == 22 and not refused.exists()  # 22: curl --fail's HTTP error


def test_model_parameter_loads_on_demand_and_keeps_at_most_max_models(tmp_path):
    def stub(name: str) -> SimpleNamespace:
        return stub_upscaler(lambda image, outscale: image, name)

    loads: list[str] = []

    def load(name: str) -> SimpleNamespace:
        loads.append(name)
        return stub(name)

    client = server.create_app(stub("own"), load=load, max_models=2).test_client()
    data = png_bytes(tmp_path, "RGB", (5, 4), seed=12)

    def ask(query: str):
        return client.post(f"/model/predict{query}", data={"image": (io.BytesIO(data), "x.png")})

    for query in ("?model=srresnet", "?model=srresnet", "", "?model=own", "?model=real"):
        answer = ask(query)
        assert answer.status_code == 200
        assert answer.headers["X-Srgan-Model"] == (query.partition("=")[2] or "own")
    assert ask("?model=srresnet").status_code == 200  # real pushed it out: loaded again
    assert loads == ["srresnet", "real", "srresnet"]
    unknown = ask("?model=nope")
    assert unknown.status_code == 400
    assert unknown.get_json()["message"] == (
        "unknown model 'nope'; choose one of own, auto, srgan, srresnet, real"
    )
    assert client.get("/model/metadata").get_json()["models"] == ["own", *MODEL_CHOICES]
    only = server.create_app(stub("own"), load=load, max_models=1).test_client()
    refused = only.post("/model/predict?model=srgan", data={"image": (io.BytesIO(data), "x.png")})
    assert refused.status_code == 400
    assert "this server holds only model own" in refused.get_json()["message"]
    assert loads == ["srresnet", "real", "srresnet"]
    assert ask("?model=auto").headers["X-Srgan-Model"] == "auto"  # auto: loaded like the others
    assert loads[-1] == "auto"


def test_model_parameter_loads_a_shipped_model(base, tmp_path):
    data = png_bytes(tmp_path, "RGB", (6, 5), seed=13)
    answer = predict(base, data, filename="f.png", query="?model=srresnet&outscale=2")
    assert answer.status == 200 and answer.image().size == (12, 10)
    assert answer.headers["X-Srgan-Model"] == "srresnet"
    assert answer.headers["Content-Disposition"] == 'inline; filename="f_x2.png"'


def test_predict_is_the_library_result(base, upscaler, tmp_path):
    data = png_bytes(tmp_path, "RGB", (12, 10), seed=1)
    answer = predict(base, data, filename="food.png")
    assert answer.image().size == (48, 40)
    assert answer.body == reference(upscaler, data)
    assert answer.headers["Content-Disposition"] == 'inline; filename="food_x4.png"'


def test_rgba_upload_keeps_alpha(base, tmp_path):
    data = png_bytes(tmp_path, "RGBA", (10, 8), seed=2)
    img = predict(base, data).image()
    assert (img.mode, img.size) == ("RGBA", (40, 32))
    alpha = np.asarray(Image.open(io.BytesIO(data)))[..., 3]
    assert np.array_equal(np.asarray(img)[..., 3], upscale_alpha(alpha))


def test_gray_upload_stays_gray(base, tmp_path):
    img = predict(base, png_bytes(tmp_path, "L", (9, 7), seed=3)).image()
    assert (img.mode, img.size) == ("L", (36, 28))


def test_metadata(base, upscaler):
    answer = request(f"{base}/model/metadata")
    assert answer.status == 200
    data = answer.json()
    assert set(data) >= SEED_METADATA_KEYS
    assert all(isinstance(data[key], str) and data[key] for key in SEED_METADATA_KEYS)
    assert data["version"] == __version__
    assert data["model"] == upscaler.name == "tiny"
    assert data["limits"]["max_pixels"] == server.DEFAULT_MAX_PIXELS


def test_openapi_describes_both_endpoints(base):
    answer = request(f"{base}/openapi.json")
    assert answer.status == 200
    spec = answer.json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {"/model/predict", "/model/metadata"}
    body = spec["paths"]["/model/predict"]["post"]["requestBody"]["content"]
    assert "image" in body["multipart/form-data"]["schema"]["properties"]
    refs = json.dumps(spec).count('"$ref": "#/components/schemas/')
    assert refs >= 3 and {"Error", "Metadata"} <= set(spec["components"]["schemas"])


@pytest.mark.parametrize(("outscale", "size"), [("2", (24, 20)), ("3", (36, 30)), ("4", (48, 40))])
def test_outscale_query_parameter(base, upscaler, tmp_path, outscale, size):
    data = png_bytes(tmp_path, "RGBA", (12, 10), seed=12)
    img = predict(base, data, query=f"?outscale={outscale}").image()
    assert (img.mode, img.size) == ("RGBA", size)
    expected = upscaler.upscale(Image.open(io.BytesIO(data)), outscale=float(outscale))
    assert np.array_equal(np.asarray(img), np.asarray(expected))


@pytest.mark.parametrize("outscale", ["0", "-1", "4.5", "nan", "two", ""])
def test_bad_outscale_is_400(base, tmp_path, outscale):
    answer = predict(base, png_bytes(tmp_path), query=f"?outscale={outscale}")
    assert_error(answer, 400, "outscale")


def test_openapi_documents_outscale_and_model(base):
    predict_spec = request(f"{base}/openapi.json").json()["paths"]["/model/predict"]["post"]
    model, parameter = predict_spec["parameters"]
    assert (model["name"], model["in"]) == ("model", "query")
    assert parameter["name"] == "outscale" and parameter["in"] == "query"
    assert parameter["schema"]["maximum"] == 4 and parameter["schema"]["default"] == 4


def test_index_page_links_the_api(base):
    answer = request(f"{base}/")
    assert answer.status == 200 and answer.headers.get_content_type() == "text/html"
    assert b'href="openapi.json"' in answer.body


# -- refusals: JSON, 4xx, the server keeps going ---------------------------------------------


def assert_error(answer: Answer, status: int, *fragments: str) -> str:
    assert answer.status == status, answer.body[:300]
    data = answer.json()
    assert set(data) == {"status", "message"} and data["status"] == "error"
    for fragment in fragments:
        assert fragment in data["message"]
    return data["message"]


def test_missing_field(base, tmp_path):
    answer = predict(base, png_bytes(tmp_path), field="file")
    assert_error(answer, 400, "missing file field 'image'", "curl -F")


def test_text_field_instead_of_a_file(base):
    body, headers = multipart({"image": (None, b"photo.png")})
    assert_error(request(f"{base}/model/predict", "POST", body, headers), 400, "'image'")


def test_not_multipart(base):
    answer = request(f"{base}/model/predict", "POST", b"{}", {"Content-Type": "application/json"})
    assert_error(answer, 400, "'image'")


def test_text_file(base):
    answer = predict(base, b"name,size\nfood,12\n", filename="notes.png")
    assert_error(answer, 400, "notes.png:", "text")


def test_truncated_png(base, tmp_path):
    data = png_bytes(tmp_path, "RGB", (40, 30), seed=4)
    answer = predict(base, data[: len(data) // 2], filename="cut.png")
    assert_error(answer, 400, "cut.png:", "truncated")


def test_empty_file(base):
    assert_error(predict(base, b"", filename="empty.png"), 400, "empty")


def test_wrong_method(base):
    answer = request(f"{base}/model/predict")
    assert_error(answer, 405)
    assert "POST" in answer.headers["Allow"]
    assert_error(request(f"{base}/model/metadata", "POST", b""), 405)


def test_unknown_path(base):
    assert_error(request(f"{base}/predict"), 404)


def test_pixel_and_upload_limits(upscaler, tmp_path):
    with running(upscaler, max_pixels=100, max_upload_bytes=64 * 1024) as url:
        small = predict(url, png_bytes(tmp_path, "RGB", (10, 10), seed=6))
        assert small.image().size == (40, 40)
        too_many = predict(url, png_bytes(tmp_path, "RGB", (11, 10), seed=7), filename="big.png")
        assert_error(too_many, 400, "big.png:", "110 pixels", "limit of 100")
        noise = np.random.default_rng(8).integers(0, 256, 200 * 1024, dtype=np.uint8)
        assert_error(predict(url, noise.tobytes()), 413, "65,536 bytes")
        assert predict(url, png_bytes(tmp_path, "RGB", (10, 10), seed=6)).body == small.body


def stub_upscaler(upscale_image, name: str = "stub") -> SimpleNamespace:
    """What ``create_app`` reads of an ``Upscaler``, with ``upscale_image`` of the test's."""
    card = WeightCard(name=name, architecture={}, sha256="0" * 64)
    spec = SimpleNamespace(arch="SRResNet")
    stub = SimpleNamespace(name=name, card=card, scale=4, spec=spec, upscale_image=upscale_image)
    stub.pick = lambda source=None: stub  # one model, whatever the upload
    return stub


def test_unexpected_error_is_json_500_and_logged(caplog):
    def explode(image, outscale=4.0):
        raise RuntimeError("model fell over")

    stub = stub_upscaler(explode)
    client = server.create_app(stub).test_client()
    data = encode_png(np.zeros((4, 4, 3), np.uint8), None, "RGB")
    with caplog.at_level(logging.ERROR):
        answer = client.post("/model/predict", data={"image": (io.BytesIO(data), "x.png")})
    assert answer.status_code == 500
    assert answer.get_json() == {
        "status": "error",
        "message": "internal server error (details are in the server log)",
    }
    assert "model fell over" in caplog.text


def test_still_serving_after_bad_requests(base, tmp_path):
    """Garbage requests, and a client that hangs up mid-upload, do not stop the server."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert b"400" in raw.recv(4096)  # http.server's own page: no HTTP version to answer in
    body, headers = multipart({"image": ("x.png", png_bytes(tmp_path, seed=9))})
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S) as raw:
        head = (
            f"POST /model/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {headers['Content-Type']}"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        raw.sendall(head.encode() + body[: len(body) // 3])
    data = png_bytes(tmp_path, "RGB", (8, 6), seed=10)
    assert predict(base, data).image().size == (32, 24)


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_clients_get_their_own_images(base, upscaler, tmp_path):
    clients, rounds = 8, 6
    modes = ("RGB", "RGBA", "L", "RGB")
    uploads = [
        png_bytes(tmp_path, modes[i % 4], (8 + i, 6 + (i * 3) % 5), seed=100 + i)
        for i in range(clients)
    ]
    expected = [reference(upscaler, data) for data in uploads]
    failures: list[str] = []
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        start.wait()
        for round_ in range(rounds):
            answer = predict(base, uploads[index], filename=f"client{index}.png")
            if answer.status != 200 or answer.body != expected[index]:
                failures.append(f"client {index} round {round_}: {answer.status}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S * 2)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_model_runs_one_request_at_a_time(tmp_path):
    """The 8x6 test above passes even without the lock, so check the lock itself."""
    active, peak = 0, 0
    counting = threading.Lock()

    def slow_identity(image, outscale=4.0):
        nonlocal active, peak
        with counting:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with counting:
            active -= 1
        return image

    stub = stub_upscaler(slow_identity)
    data = png_bytes(tmp_path, "RGB", (5, 4), seed=11)
    statuses: list[int] = []
    with running(stub) as url:
        threads = [
            threading.Thread(target=lambda: statuses.append(predict(url, data).status))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_S)
    assert statuses == [200] * 6
    assert peak == 1


# -- plumbing: defaults, binding, the CLI command ---------------------------------------------


def test_cli_defaults_match_the_server():
    assert serve_cmd.DEFAULT_SERVE_HOST == server.DEFAULT_HOST
    assert serve_cmd.DEFAULT_SERVE_PORT == server.DEFAULT_PORT
    assert serve_cmd.DEFAULT_SERVE_MAX_PIXELS == server.DEFAULT_MAX_PIXELS
    assert serve_cmd.DEFAULT_MAX_UPLOAD_MB == server.DEFAULT_MAX_UPLOAD_MB
    assert serve_cmd.DEFAULT_MAX_MODELS == server.DEFAULT_MAX_MODELS


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert server.is_loopback(host) is loopback


def test_busy_port_is_one_line_error(upscaler):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SrganError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: "):
            server.create_server(upscaler, "127.0.0.1", port)


def test_cli_without_flask_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "flask", None)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {serve_cmd.SERVE_EXTRA_MISSING}\n"
    assert "pip install 'srgan-cli[serve]'" in serve_cmd.SERVE_EXTRA_MISSING


def test_cli_passes_options_and_warns_off_loopback(monkeypatch, tiny_weights):
    calls = []

    def fake_serve(upscaler, host, port, *, on_ready, **options):
        calls.append((upscaler.name, host, port, options))
        on_ready(f"http://{host}:{port}")

    monkeypatch.setattr(server, "serve", fake_serve)
    argv = ["serve", "--weights", str(tiny_weights), "--host", "0.0.0.0", "--port", "8080"]
    result = CliRunner().invoke(main, [*argv, "--max-pixels", "1000", "--max-upload-mb", "2"])
    assert result.exit_code == 0, result.output
    options = {"max_pixels": 1000, "max_upload_bytes": 2 * 1024 * 1024, "max_models": 2}
    assert calls == [("tiny", "0.0.0.0", 8080, options)]
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Warning: listening on 0.0.0.0")
    assert lines[-1] == "srgan: serving model tiny on http://0.0.0.0:8080 (Ctrl-C to stop)"
    quiet = CliRunner().invoke(main, ["serve", "--weights", str(tiny_weights)])
    assert quiet.exit_code == 0 and "Warning" not in quiet.stderr
    assert calls[-1][1:3] == ("127.0.0.1", 5000)


@pytest.mark.slow
def test_srgan_serve_process_until_ctrl_c(tiny_weights, tmp_path):
    argv = [sys.executable, "-m", "srgan_cli", "serve", "--weights", str(tiny_weights)]
    proc = subprocess.Popen([*argv, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stderr.readline()
        assert ready.startswith("srgan: serving model tiny on http://127.0.0.1:"), ready
        url = ready.split(" on ")[1].split()[0]
        assert predict(url, png_bytes(tmp_path, seed=12)).image().size == (48, 40)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert '"POST /model/predict HTTP/1.1" 200' in rest


def test_auto_answers_each_upload_with_its_own_model_and_names_it(tmp_path):
    """A server over the auto ``ModelSet``: the upload's own header picks the model, the
    ``X-Srgan-Model`` header names it, the bytes are the forced model's."""
    from srgan_cli.modelset import load_model

    auto = load_model(precision="fp32")
    folder = make_mixed_folder(tmp_path)
    loads: list[str] = []

    def load(name: str):
        loads.append(name)
        raise SrganError("not loaded in this test")

    with running(auto, load=load) as url:
        metadata = request(f"{url}/model/metadata").json()
        assert metadata["model"] == "auto"
        assert "srgan sha256" in metadata["source"] and "real sha256" in metadata["source"]
        for name, model in MIXED_MODELS.items():
            data = (folder / name).read_bytes()
            answer = predict(url, data, filename=name)
            assert answer.status == 200 and answer.headers[server.MODEL_HEADER] == model, name
            assert answer.body == reference(auto.members[model], data), name
            for query in ("?model=auto", "?model=real", "?model=srgan"):  # members: no load
                forced = query.partition("=")[2]
                answer = predict(url, data, filename=name, query=query)
                used = model if forced == "auto" else forced
                assert answer.headers[server.MODEL_HEADER] == used, (name, query)
                assert answer.body == reference(auto.members[used], data), (name, query)
        assert loads == []  # auto's members were used as they are
        other = predict(url, data, query="?model=srresnet")
        assert other.status == 400 and loads == ["srresnet"]  # not a member: loaded on demand
        unknown = predict(url, data, query="?model=nope")
        assert unknown.status == 400
        assert unknown.json()["message"] == (
            "unknown model 'nope'; choose one of auto, srgan, real, srresnet"
        )
