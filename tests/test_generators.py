"""Tests for noisetrain.generators (paper appendix A, Tables 6, 7 and 16)."""

import pytest
import torch

from noisetrain.errors import InputError
from noisetrain.noise import generators
from noisetrain.noise.generators import NoiseGenerator, count_parameters


@pytest.mark.parametrize("depth,expected", [(1, 12), (2, 143), (3, 563), (4, 983), (5, 1403)])
def test_parameter_counts_match_table_16(depth, expected):
    assert count_parameters(NoiseGenerator(3, depth=depth)) == expected


def test_3x3_variant_has_3x3_kernels_in_second_layer_only():
    gen = NoiseGenerator(3, depth=4, kernel="3x3")
    sizes = [tuple(c.kernel_size) for c in gen.convs]
    assert sizes == [(1, 1), (3, 3), (1, 1), (1, 1)]
    assert [c.out_channels for c in gen.convs] == [20, 20, 20, 3]
    assert all(tuple(c.padding) == (0, 0) for c in gen.convs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(channels=0),
        dict(channels=-1),
        dict(channels=True),
        dict(channels=3, depth=0),
        dict(channels=3, depth=6),
        dict(channels=3, depth=2.0),
        dict(channels=3, kernel="5x5"),
        dict(channels=3, depth=1, kernel="3x3"),
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        NoiseGenerator(**kwargs)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kernel", ["1x1", "3x3"])
def test_output_shape(channels, kernel):
    gen = NoiseGenerator(channels, kernel=kernel)
    x = torch.rand(2, channels, 7, 5)
    assert gen(x).shape == x.shape
    assert gen((2, channels, 7, 5)).shape == x.shape
    pad = 1 if kernel == "3x3" else 0
    assert gen.input_shape(x.shape) == (2, channels, 7 + 2 * pad, 5 + 2 * pad)


def test_wrong_channel_count_raises():
    with pytest.raises(ValueError):
        NoiseGenerator(3)(torch.rand(1, 1, 4, 4))


def test_initialisation_and_rng_are_reproducible():
    a = NoiseGenerator(3, rng=torch.Generator().manual_seed(1))
    b = NoiseGenerator(3, rng=torch.Generator().manual_seed(1))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    for conv in a.convs:
        assert torch.all(conv.bias == 0)
    weights = torch.cat([c.weight.flatten() for c in a.convs])
    assert 0.007 < weights.std().item() < 0.013
    x = torch.zeros(2, 3, 4, 4)
    out1 = a(x, torch.Generator().manual_seed(7))
    out2 = a(x, torch.Generator().manual_seed(7))
    assert torch.equal(out1, out2)


def test_new_generator_outputs_standard_gaussian():
    gen = NoiseGenerator(3, rng=torch.Generator().manual_seed(0))
    with torch.no_grad():
        v = gen((64, 3, 32, 32), torch.Generator().manual_seed(0)).flatten().double()
    mean, std = v.mean().item(), v.std().item()
    kurtosis = (((v - mean) / std) ** 4).mean().item()
    assert abs(mean) < 0.02
    assert abs(std - 1) < 0.02
    assert abs(kurtosis - 3) < 0.1


def _randomised(gen):
    # Larger weights and biases than at initialisation, so that any spatial dependence the
    # architecture allows is clearly visible (and ReLUs are not all inactive).
    gen = gen.double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in gen.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
    return gen


@pytest.mark.parametrize("channels", [1, 3])
def test_1x1_output_pixel_depends_only_on_its_own_input_noise(channels):
    gen = _randomised(NoiseGenerator(channels, kernel="1x1"))
    z = torch.randn(2, channels, 6, 6, dtype=torch.float64)
    z2 = z.clone()
    z2[1, 0, 2, 3] += 1.0
    with torch.no_grad():
        changed = (gen.transform(z2) - gen.transform(z)).abs() > 0
    assert changed[1, :, 2, 3].any()
    changed[1, :, 2, 3] = False
    assert not changed.any()


@pytest.mark.parametrize("channels", [1, 3])
def test_3x3_correlation_limited_to_3x3_neighbourhood(channels):
    gen = _randomised(NoiseGenerator(channels, kernel="3x3"))
    z = torch.randn(1, channels, 8, 8, dtype=torch.float64)  # output is 6 x 6
    z2 = z.clone()
    z2[0, 0, 4, 3] += 1.0  # padded location (4, 3) = output location (3, 2)
    with torch.no_grad():
        out, out2 = gen.transform(z), gen.transform(z2)
    assert out.shape == (1, channels, 6, 6)
    changed = ((out2 - out).abs() > 0).any(dim=1)[0]
    allowed = torch.zeros(6, 6, dtype=torch.bool)
    allowed[2:5, 1:4] = True
    assert not (changed & ~allowed).any()
    assert changed.sum() > 1  # the noise does spread to neighbours


def test_gradients_reach_all_parameters():
    gen = NoiseGenerator(3, kernel="3x3")
    gen((2, 3, 5, 5)).pow(2).sum().backward()
    for p in gen.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize(
    "kernel,depth,channels",
    [("1x1", 4, 1), ("1x1", 1, 1), ("1x1", 5, 1), ("1x1", 1, 3), ("1x1", 2, 3), ("1x1", 4, 3), ("1x1", 5, 3),
     ("3x3", 4, 3), ("3x3", 2, 1)],
)
def test_fast_transform_equals_the_layer_by_layer_definition(kernel, depth, channels):
    # Single-channel 1x1 generators take the piecewise-linear path, multi-channel 1x1 ones the
    # blockwise one (on the CPU), 3x3 ones the matmul one.
    gen = NoiseGenerator(channels, depth, kernel, rng=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for conv in gen.convs:  # make every layer matter
            conv.weight.normal_(0.0, 0.3)
            conv.bias.normal_(0.0, 0.1)
    z = torch.randn(gen.input_shape((3, channels, 9, 7)), generator=torch.Generator().manual_seed(1))
    grad = torch.randn(3, channels, 9, 7, generator=torch.Generator().manual_seed(2))
    expected = gen.reference_transform(z)
    expected_grads = torch.autograd.grad((expected * grad).sum(), list(gen.parameters()))
    out = gen.transform(z)
    assert torch.allclose(out, expected, atol=1e-5)
    for got, want in zip(torch.autograd.grad((out * grad).sum(), list(gen.parameters())), expected_grads):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    # Another generator evaluated with these weights gives the same noise.
    other = NoiseGenerator(channels, depth, kernel)
    assert torch.allclose(other.transform(z, gen.state_dict()), expected, atol=1e-5)


@pytest.mark.parametrize("kernel,depth,channels", [("1x1", 4, 1), ("1x1", 1, 3), ("1x1", 4, 3), ("3x3", 4, 3), ("3x3", 2, 1)])
def test_each_image_under_its_own_weights_is_the_layer_by_layer_definition(kernel, depth, channels):
    """transform_each (ANT's replay on a GPU): image i under state i's weights, as each state alone."""
    states = []
    for seed in range(3):
        gen = NoiseGenerator(channels, depth, kernel, rng=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            for conv in gen.convs:
                conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(10 + seed))
                conv.bias.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(20 + seed))
        states.append((gen, gen.state_dict()))
    order = [2, 0, 0, 1, 2]  # images per state: repeated, out of order
    z = torch.randn(gen.input_shape((len(order), channels, 9, 7)), generator=torch.Generator().manual_seed(1))
    weights = {key: torch.stack([states[k][1][key] for k in order]) for key in states[0][1]}
    out = gen.transform_each(z, weights)
    assert out.shape == (len(order), channels, 9, 7)
    for i, k in enumerate(order):
        assert torch.allclose(out[i : i + 1], states[k][0].reference_transform(z[i : i + 1]), atol=1e-5)
    with pytest.raises(InputError, match="stack 4 states"):
        gen.transform_each(z[:4], weights)


@pytest.mark.parametrize("block", [10, 63, 100, 200, 100_000])
def test_blockwise_1x1_generator_in_any_blocks(monkeypatch, block):
    """Blocks of part of an image (with a shorter last one), exactly one image, or several whole
    images: values and gradients (weights and the input noise z) as layer by layer, in float64."""
    monkeypatch.setattr(generators, "BLOCK_PIXELS", block)
    gen = NoiseGenerator(3, 4, rng=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        for conv in gen.convs:
            conv.weight.normal_(0.0, 0.3)
            conv.bias.normal_(0.0, 0.1)
    z = torch.randn(5, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    grad = torch.randn(5, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    inputs = [z, *gen.parameters()]
    expected = gen.reference_transform(z)
    out = gen.transform(z)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(torch.autograd.grad((out * grad).sum(), inputs),
                         torch.autograd.grad((expected * grad).sum(), inputs)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda zz: gen.transform(zz), (z[:2, :, :3, :4].detach().requires_grad_(),))


def test_blockwise_1x1_generator_with_imagenet_sized_noise():
    # A (2, 3, 224, 224) draw spans several blocks per image; float32 as in training.
    gen = NoiseGenerator(3, 4, rng=torch.Generator().manual_seed(0))
    z = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(gen.transform(z), gen.reference_transform(z), rtol=1e-5, atol=1e-5)


def test_state_dict_layout_is_unchanged_so_saved_generators_load(tmp_path):
    """The blockwise path changes only how a 1x1 generator is evaluated: the state dict keeps the
    convolutions' keys and shapes (those of checkpoints, replay banks and model files written before),
    and a generator saved to a file and loaded into a new one gives the noise of the definition."""
    gen = NoiseGenerator(3, 4, rng=torch.Generator().manual_seed(0))
    layout = {k: tuple(v.shape) for k, v in gen.state_dict().items()}
    assert layout == {"convs.0.weight": (20, 3, 1, 1), "convs.0.bias": (20,), "convs.1.weight": (20, 20, 1, 1),
                      "convs.1.bias": (20,), "convs.2.weight": (20, 20, 1, 1), "convs.2.bias": (20,),
                      "convs.3.weight": (3, 20, 1, 1), "convs.3.bias": (3,)}
    torch.save(gen.state_dict(), tmp_path / "gen.pt")
    loaded = NoiseGenerator(3, 4)
    loaded.load_state_dict(torch.load(tmp_path / "gen.pt", weights_only=True))
    z = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.transform(z), gen.reference_transform(z), rtol=1e-6, atol=1e-6)
