"""Degradation chains: parsing, determinism per seed, and what each step does to an image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from srgan_cli import degrade
from srgan_cli.errors import UsageError
from srgan_cli.metrics import bicubic_downscale


@pytest.fixture(scope="module")
def hr() -> np.ndarray:
    """A smooth 64x48 'photo' with some edges (random blocks, bicubic-enlarged)."""
    small = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((64, 48), Image.BICUBIC))


def test_bicubic_chain_is_the_published_protocol(hr):
    lr = degrade.parse_chain("bicubic").apply(hr)
    np.testing.assert_array_equal(lr, bicubic_downscale(hr))


@pytest.mark.parametrize("text", ["bicubic+jpeg75", "lanczos+jpeg80", "bicubic+noise5", "box"])
def test_named_chains_are_deterministic_per_seed(hr, text):
    chain = degrade.parse_chain(text)
    first, again = chain.apply(hr, seed=7), chain.apply(hr, seed=7)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (12, 16, 3) and first.dtype == np.uint8


def test_noise_depends_on_the_seed_and_has_its_sigma(hr):
    chain = degrade.parse_chain("bicubic+noise5")
    clean = bicubic_downscale(hr).astype(float)
    a, b = chain.apply(hr, seed=1), chain.apply(hr, seed=2)
    assert not np.array_equal(a, b)
    assert 3.5 < np.std(a - clean) < 6.0


def test_every_resizer_gives_a_different_lr(hr):
    lrs = {name: degrade.parse_chain(name).apply(hr) for name in degrade.RESIZERS}
    names = list(lrs)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not np.array_equal(lrs[first], lrs[second]), (first, second)


def test_jpeg_step_loses_more_at_lower_quality(hr):
    clean = bicubic_downscale(hr).astype(float)
    errors = [np.abs(degrade.jpeg(clean.astype(np.uint8), q) - clean).mean() for q in (20, 95)]
    assert errors[0] > errors[1] > 0


def test_chain_names_are_normalised_and_bad_ones_refused():
    assert degrade.parse_chain(" Lanczos+JPEG80 ").name == "lanczos+jpeg80"
    for bad, reason in [
        ("cubic", "must start with a resizer"),
        ("bicubic+blur2", "unknown degradation step"),
        ("bicubic+jpeg0", "1-100"),
        ("bicubic+jpeg", "unknown degradation step"),
    ]:
        with pytest.raises(UsageError, match=reason):
            degrade.parse_chain(bad)


def test_blur_kernel_is_normalised_and_anisotropic():
    kernel = degrade.gaussian_kernel(3.0, 0.5, 0.0)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    centre = kernel.shape[0] // 2
    assert kernel[centre, centre + 3] > 10 * kernel[centre + 3, centre]  # wide along x only


def test_blur_keeps_flat_images_and_smooths_edges():
    flat = np.full((20, 20, 3), 100, np.uint8)
    np.testing.assert_array_equal(degrade.gaussian_blur(flat, 2.0, 1.0, 0.3), flat)
    edge = np.zeros((20, 20, 3), np.uint8)
    edge[:, 10:] = 255
    blurred = degrade.gaussian_blur(edge, 1.5, 1.5, 0.0)
    assert 0 < blurred[5, 9, 0] < 255 and blurred[5, 0, 0] == 0


def test_poisson_noise_grows_as_the_peak_falls(hr):
    rng = np.random.default_rng(0)
    grey = np.full((32, 32, 3), 128, np.uint8)
    weak = np.std(degrade.poisson_noise(grey, 5000.0, rng).astype(float))
    strong = np.std(degrade.poisson_noise(grey, 200.0, rng).astype(float))
    assert strong > 2 * weak > 0
    gray_field = degrade.poisson_noise(grey, 200.0, rng, gray=True).astype(int)
    np.testing.assert_array_equal(gray_field[..., 0], gray_field[..., 1])


def test_gray_gaussian_noise_is_one_field_for_all_channels():
    grey = np.full((16, 16, 3), 128, np.uint8)
    noisy = degrade.gaussian_noise(grey, 8.0, np.random.default_rng(0), gray=True)
    np.testing.assert_array_equal(noisy[..., 0], noisy[..., 2])
    colour = degrade.gaussian_noise(grey, 8.0, np.random.default_rng(0))
    assert not np.array_equal(colour[..., 0], colour[..., 2])


def test_real_chain_is_deterministic_per_seed_and_varied(hr):
    real = degrade.RealDegradation()
    draws = [real.apply(hr, np.random.default_rng([0, i])) for i in range(12)]
    again = [real.apply(hr, np.random.default_rng([0, i])) for i in range(12)]
    for first, second in zip(draws, again, strict=True):
        np.testing.assert_array_equal(first, second)
        assert first.shape == (12, 16, 3) and first.dtype == np.uint8
    distinct = {d.tobytes() for d in draws}
    assert len(distinct) == len(draws)


def _spy_on_steps(monkeypatch) -> list[str]:
    """Record the name of every degradation step the chains call, in order."""
    calls: list[str] = []
    for name in ("gaussian_blur", "gaussian_noise", "poisson_noise", "jpeg", "resize"):
        original = getattr(degrade, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(degrade, name, spy)
    return calls


def test_real_chain_reaches_every_step_type(hr, monkeypatch):
    """Over many draws: blur, both noises, JPEG, and one- and two-pass resizing all happen."""
    calls = _spy_on_steps(monkeypatch)
    resizes_per_draw, seen = set(), set()
    for i in range(60):
        calls.clear()
        degrade.RealDegradation().apply(hr, np.random.default_rng(i))
        resizes_per_draw.add(calls.count("resize"))
        seen |= set(calls)
    assert seen == {"gaussian_blur", "gaussian_noise", "poisson_noise", "jpeg", "resize"}
    assert resizes_per_draw == {1, 2}


def test_light_chain_damages_less_than_the_real_chain(hr):
    """real-light: on average its LR stays closer to the clean protocol LR than real's."""
    clean = bicubic_downscale(hr).astype(float)

    def mean_damage(name: str) -> float:
        chain = degrade.TRAINING_CHAINS[name]
        draws = [chain.apply(hr, np.random.default_rng([3, i])) for i in range(200)]
        return float(np.mean([np.abs(d.astype(float) - clean).mean() for d in draws]))

    assert set(degrade.TRAINING_CHAINS) == set(degrade.TRAINING_DEGRADATIONS) - {"bicubic"}
    assert mean_damage("real-light") < 0.8 * mean_damage("real")


def _share_of_plain_jpeg_draws(chain: degrade.RealDegradation, hr, monkeypatch) -> float:
    """How often a draw is one resize then one JPEG: the pictures issue 10 is about."""
    calls = _spy_on_steps(monkeypatch)
    plain = 0
    for i in range(300):
        calls.clear()
        chain.apply(hr, np.random.default_rng([5, i]))
        plain += calls == ["resize", "jpeg"]
    monkeypatch.undo()
    return plain / 300


def test_web_chain_is_mostly_plain_jpeg(hr, monkeypatch):
    """real-web: JPEG without noise or blur is its commonest draw, far more than in real-light."""
    web = _share_of_plain_jpeg_draws(degrade.TRAINING_CHAINS["real-web"], hr, monkeypatch)
    light = _share_of_plain_jpeg_draws(degrade.TRAINING_CHAINS["real-light"], hr, monkeypatch)
    assert web > 0.3
    assert web > 2 * light


def test_resizer_weights_tilt_the_draw(hr, monkeypatch):
    """real-web-sharp draws bicubic and Lanczos far more often than box and bilinear."""
    used: list[str] = []
    original = degrade.resize

    def spy(image, size, resizer):
        used.append(resizer)
        return original(image, size, resizer)

    monkeypatch.setattr(degrade, "resize", spy)
    chain = degrade.TRAINING_CHAINS["real-web-sharp"]
    for i in range(300):
        chain.apply(hr, np.random.default_rng([7, i]))
    sharp = sum(r in ("bicubic", "lanczos") for r in used) / len(used)
    assert set(used) == {"box", "bilinear", "bicubic", "lanczos"}
    assert 0.6 < sharp < 0.8


@pytest.mark.parametrize(
    ("text", "quality"),
    [
        ("bicubic+jpeg60", 60),
        ("lanczos+noise3+jpeg90", 90),
        ("bicubic", None),
        ("box+jpeg70+noise2", None),
    ],
)
def test_apply_encoded_gives_the_last_jpeg_file(hr, text, quality):
    """The LR is ``apply``'s, and its file (what ``--model auto`` reads) is the chain's own
    JPEG when that is the last step; a chain ending elsewhere has no file."""
    from srgan_cli.autoselect import estimate_jpeg_quality

    chain = degrade.parse_chain(text)
    lr, data = chain.apply_encoded(hr, seed=3)
    np.testing.assert_array_equal(lr, chain.apply(hr, seed=3))
    if quality is None:
        assert data is None
        return
    np.testing.assert_array_equal(degrade.decode(data), lr)
    with Image.open(io.BytesIO(data)) as image:
        assert estimate_jpeg_quality(image.quantization) == quality
