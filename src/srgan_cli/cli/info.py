"""``srgan info``: the version, the shipped models with their training, and the runtime;
``srgan info FILE``: what a model file holds (architecture, scale, parameters, sha256).

Fast by default: the TensorFlow and Keras versions come from the installed packages'
metadata, so nothing loads TensorFlow (seconds) unless ``--runtime`` asks what it reports
once started (its thread pools), or FILE is a TF checkpoint (read with TensorFlow).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from srgan_cli import __version__
from srgan_cli.cli.options import CONTEXT_SETTINGS
from srgan_cli.errors import WeightsError
from srgan_cli.weights import MODEL_NAMES


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--runtime",
    is_flag=True,
    help="Also start TensorFlow and report its thread pools (takes seconds).",
)
def info(file: Path | None, as_json: bool, runtime: bool) -> None:
    """Show the version, the shipped models and their training, and the runtime.

    With FILE (.weights.h5, .pth/.pt/.ckpt, .safetensors or a TF checkpoint prefix):
    describe that model file instead, without converting it.
    """
    if file is not None:
        from srgan_cli.tfstartup import quiet_tensorflow_startup

        with quiet_tensorflow_startup():
            data = describe_file(file)
        click.echo(json.dumps(data, indent=2) if as_json else _file_text(data))
        return
    data = collect_info(runtime=runtime)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for line in _info_lines(data):
            click.echo(line)


def collect_info(*, runtime: bool = False) -> dict[str, Any]:
    """Everything ``srgan info`` reports, as plain JSON-ready data; ``runtime`` imports
    TensorFlow for its thread settings (``threads.tf_intra_op``/``tf_inter_op``)."""
    from srgan_cli.pipeline import choose_precision, cpu_features

    features = cpu_features()
    threads: dict[str, Any] = {"cpu_count": os.cpu_count()}
    if runtime:
        threads.update(_tensorflow_threads())
    return {
        "version": __version__,
        "models": {name: _model_info(name) for name in MODEL_NAMES},
        "tensorflow": _installed("tensorflow"),
        "keras": _installed("keras"),
        "cpu_features": features,
        "auto_precision": choose_precision("auto", features),
        "threads": threads,
    }


def _installed(package: str) -> str | None:
    """A package's installed version from its metadata (None when not installed)."""
    from importlib import metadata  # not at module level: srgan --help stays quick

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _tensorflow_threads() -> dict[str, int]:
    """TensorFlow's intra- and inter-op pool sizes (0 = its default, all cores)."""
    from srgan_cli.tfstartup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        import tensorflow as tf

    return {
        "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def describe_file(file: Path) -> dict[str, Any]:
    """Architecture, scale and sizes of a model file, read from its card or its tensors (no
    Keras model is built; TensorFlow only to read a TF checkpoint)."""
    from srgan_cli import importer, weights

    path = weights.resolve(weights=file)
    card = weights.card_for(path)
    spec = weights.spec_of(card)
    ours = weights.is_ours(path)
    return {
        "file": str(file),
        "format": "keras" if ours else "imported on use",
        "name": card.name,
        "summary": spec.describe(),
        **spec.to_dict(),
        "sha256": card.sha256 if ours else importer.source_sha256(path),  # ours: verified
        "source": card.source,
        "license": card.license,
    }


def _file_text(data: dict[str, Any]) -> str:
    lines = [
        f"{data['file']}: {data['summary']}",
        f"  scale x{data['scale']}, {data['num_params']} parameters, input multiple "
        f"{data['input_multiple']}",
        f"  sha256 {data['sha256']}",
    ]
    if data["source"]:
        lines.append(
            f"  imported from {data['source']['file']} (sha256 {data['source']['sha256']})"
        )
    if data["license"]:
        lines.append(f"  license: {data['license']}")
    return "\n".join(lines)


def _model_info(name: str) -> dict[str, Any]:
    """Status of one shipped model: ok (verified against its card), missing or invalid."""
    from srgan_cli import weights

    try:
        path = weights.resolve(name)
    except WeightsError as err:
        return {"status": "missing", "detail": str(err)}
    try:
        card = weights.verify(path)
    except WeightsError as err:
        return {"status": "invalid", "file": str(path), "detail": str(err)}
    keys = ("stage", "steps", "total_steps", "wall_hours", "hardware")
    return {
        "status": "ok",
        "file": str(path),
        "sha256": card.sha256[:12],
        "training": {key: card.training.get(key) for key in keys},
        "metrics": card.metrics or card.training.get("metrics", {}),
    }


def _metric_text(name: str, value: Any) -> str:
    """'Set5 31.29 dB / 0.882 / LPIPS 0.176' for a recorded set, else 'name value'."""
    if isinstance(value, dict) and "psnr" in value:
        text = f"{name} {value['psnr']:.2f} dB / {value['ssim']:.3f}"
        return text + (f" / LPIPS {value['lpips']:.3f}" if value.get("lpips") is not None else "")
    return f"{name} {value}"


def _info_lines(data: dict[str, Any]) -> Iterator[str]:
    yield f"srgan {data['version']}"
    yield "models:"
    for name, model in data["models"].items():
        if model["status"] != "ok":
            yield f"  {name:<9} {model['status']}: {model['detail']}"
            continue
        training = ", ".join(f"{k} {v}" for k, v in model["training"].items() if v is not None)
        metrics = ", ".join(_metric_text(k, v) for k, v in model["metrics"].items())
        yield f"  {name:<9} {model['file']} (sha256 {model['sha256']})"
        yield f"  {'':<9} training: {training or 'not recorded'}"
        yield f"  {'':<9} metrics: {metrics or 'not recorded'}"
    yield f"tensorflow {data['tensorflow']}, keras {data['keras']}"
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in data["cpu_features"].items())
    yield f"cpu: {flags} (auto precision: {data['auto_precision']})"
    threads = data["threads"]
    if "tf_intra_op" not in threads:
        yield f"threads: {threads['cpu_count']} cpus (srgan info --runtime: TensorFlow's pools)"
        return
    intra = threads["tf_intra_op"] or "default (all cores)"
    yield f"threads: {threads['cpu_count']} cpus, TensorFlow intra-op {intra}"
