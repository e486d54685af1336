"""The library's front door: ``from srgan_cli import Upscaler``, its types, the README example."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import srgan_cli
from srgan_cli.pipeline import Upscaler

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGE = Path(srgan_cli.__file__).resolve().parent
HEAVY = ("numpy", "PIL", "tensorflow", "keras")


def test_import_is_light_until_upscaler_is_used():
    code = (
        "import sys, srgan_cli\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "srgan_cli.Upscaler\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.splitlines()
    assert before == "[]"
    assert after == "['PIL', 'numpy']"  # the class is there; TensorFlow waits for a model


def test_top_level_names():
    assert srgan_cli.Upscaler is Upscaler
    from srgan_cli import modelset

    assert srgan_cli.load_model is modelset.load_model  # the default, auto
    assert srgan_cli.ModelSet is modelset.ModelSet
    assert "Upscaler" in srgan_cli.__all__
    with pytest.raises(AttributeError, match="no_such_thing"):
        srgan_cli.no_such_thing  # noqa: B018


@pytest.fixture(scope="module")
def upscaler(tiny_weights) -> Upscaler:
    return Upscaler(weights=tiny_weights, precision="fp32")


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((6, 5, 3), np.uint8), ((6, 5, 3), np.uint16), ((6, 5, 4), np.uint8), ((6, 5), np.uint16)],
)
def test_arrays_come_back_as_arrays(upscaler, shape, dtype):
    array = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    out = upscaler.upscale(array)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert out.shape == (24, 20, *shape[2:])


def test_pil_images_come_back_as_pil_images_with_alpha_and_icc(upscaler):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = np.random.default_rng(2).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    photo = Image.fromarray(rgba)
    photo.info["icc_profile"] = icc
    out = upscaler.upscale(photo, outscale=3)
    assert isinstance(out, Image.Image)
    assert (out.mode, out.size) == ("RGBA", (15, 18))
    assert out.info["icc_profile"] == icc
    assert np.asarray(out)[..., 3].min() == 255
    buffer = io.BytesIO()
    out.save(buffer, "PNG")  # an ordinary PIL image: saves like any other


def test_palette_image_becomes_rgb(upscaler):
    palette = Image.new("P", (5, 6), 3)
    assert upscaler.upscale(palette).mode == "RGB"


@pytest.mark.parametrize("bad", [[[1, 2, 3]], np.zeros((4, 4, 3), np.float32)])
def test_other_types_are_refused(upscaler, bad):
    with pytest.raises((TypeError, ValueError)):
        upscaler.upscale(bad)


def readme_library_example() -> str:
    """The Python block under '## As a library' in README.md."""
    section = README.read_text(encoding="utf-8").split("## As a library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README has no python example under '## As a library'"
    return match.group(1)


def test_readme_library_example_runs():
    """With the shipped model, on the README's own tiny inputs."""
    namespace: dict[str, object] = {}
    exec(compile(readme_library_example(), "README.md", "exec"), namespace)
    big, half = namespace["big"], namespace["half"]
    assert isinstance(big, np.ndarray) and big.shape == (128, 192, 3) and big.dtype == np.uint8
    assert isinstance(half, Image.Image) and (half.mode, half.size) == ("RGBA", (96, 64))


def test_our_deprecation_warnings_fail_the_tests():
    """pyproject's filterwarnings: DeprecationWarning from srgan_cli is an error, not noise."""
    ours = {"__name__": "srgan_cli.example", "warnings": warnings}
    with pytest.raises(DeprecationWarning):
        exec("warnings.warn('old API', DeprecationWarning)", ours)
    theirs = {"__name__": "somelib.example", "warnings": warnings}
    with pytest.warns(DeprecationWarning):
        exec("warnings.warn('old API', DeprecationWarning)", theirs)


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file, relative imports resolved."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_worker_never_imports_the_cli():
    """The CLI sits above the worker (``srgan worker run`` hands it the upscale command), so
    no module under ``worker/`` may import ``srgan_cli.cli``, not even inside a function."""
    modules = sorted((PACKAGE / "worker").glob("*.py"))
    imports = {path.name: _imported_modules(path) for path in modules}
    assert "srgan_cli.errors.SrganError" in imports["server.py"]  # the scan sees imports
    upward = {
        name: sorted(m for m in found if m == "srgan_cli.cli" or m.startswith("srgan_cli.cli."))
        for name, found in imports.items()
    }
    assert {name: found for name, found in upward.items() if found} == {}
