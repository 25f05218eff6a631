"""Tests for noisetrain.piecewise: the exact piecewise-linear form of 1-channel 1x1 generators."""

import pytest
import torch

from noisetrain.noise import piecewise
from noisetrain.noise.generators import NoiseGenerator


def _layers(gen):
    return [(c.weight.flatten(1), c.bias) for c in gen.convs]


def _hand_made_depth2(a=2.0, c=3.0):
    """g(z) = a relu(z - 0.5) + c relu(-z - 0.5) (+ the residual z): kinks at -0.5 and 0.5."""
    gen = NoiseGenerator(1, depth=2)
    with torch.no_grad():
        for p in gen.parameters():
            p.zero_()
        gen.convs[0].weight[:2, 0, 0, 0] = torch.tensor([1.0, -1.0])
        gen.convs[0].bias[:2] = torch.tensor([-0.5, -0.5])
        gen.convs[1].weight[0, :2, 0, 0] = torch.tensor([a, c])
    return gen


def test_hand_made_network_has_its_kinks_and_slopes():
    pieces = piecewise.pieces(_layers(_hand_made_depth2(a=2.0, c=3.0)))
    assert pieces.breaks.tolist() == [-0.5, 0.5]
    # z < -0.5: 3 (-z - 0.5); between: 0; z > 0.5: 2 (z - 0.5).
    assert pieces.slope.tolist() == [-3.0, 0.0, 2.0]
    assert pieces.intercept.tolist() == [-1.5, 0.0, -1.0]
    z = torch.tensor([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0])
    assert torch.allclose(pieces(z), torch.tensor([4.5 - 2.0, -0.5, 0.0, 0.25, 1.0 + 1.0, 5.0 + 3.0]))


def test_a_new_generator_has_all_first_layer_kinks_at_zero():
    # Zero biases: every first-layer unit switches at z = 0; deeper layers add no kink of their own
    # because a new generator's hidden units are positively homogeneous in z.
    gen = NoiseGenerator(1, depth=4, rng=torch.Generator().manual_seed(0))
    assert piecewise.pieces(_layers(gen)).breaks.tolist() == [0.0]


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_every_breakpoint_is_a_kink_and_the_function_is_affine_between(depth):
    gen = NoiseGenerator(1, depth=depth, rng=torch.Generator().manual_seed(depth))
    with torch.no_grad():
        for conv in gen.convs:
            conv.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(10 + depth))
            conv.bias.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(20 + depth))
    gen = gen.double()
    pieces = piecewise.pieces(_layers(gen))
    breaks = pieces.breaks
    assert len(breaks) >= 3 and bool((breaks[1:] > breaks[:-1]).all())
    # Continuity at each breakpoint: the two neighbouring affine pieces meet there.
    left = pieces.slope[:-1] * breaks + pieces.intercept[:-1]
    right = pieces.slope[1:] * breaks + pieces.intercept[1:]
    assert torch.allclose(left, right, atol=1e-9)
    # Each piece agrees with the network at points strictly inside it.
    inner = torch.cat([breaks[:1] - 2, (breaks[1:] + breaks[:-1]) / 2, breaks[-1:] + 2])
    z = inner.reshape(-1, 1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(pieces(z), gen.reference_transform(z), atol=1e-9)


def test_gradient_with_respect_to_the_input_noise():
    gen = _hand_made_depth2(a=2.0, c=3.0)
    z = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    (grad,) = torch.autograd.grad(piecewise.pieces(_layers(gen))(z).sum(), [z])
    assert grad.tolist() == [-2.0, 1.0, 3.0]  # slope of g plus 1 for the residual


def test_networks_with_several_channels_are_refused():
    gen = NoiseGenerator(3, depth=2)
    with pytest.raises(ValueError, match="one input and one output channel"):
        piecewise.pieces(_layers(gen))
