import torch

from noisetrain.noise import pixel_noise as noise


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_shape_range_and_std_before_clipping():
    x = torch.full((64, 1, 28, 28), 0.5)
    out = noise.gaussian_noise(x, 0.1, gen())
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    # at sigma 0.1 around 0.5 clipping happens at 5 sigma: the change is the raw noise
    assert abs((out - x).std().item() - 0.1) < 0.002
    assert abs((out - x).mean().item()) < 0.002


def test_gaussian_clips_to_unit_range():
    x = torch.rand(16, 3, 8, 8)
    out = noise.gaussian_noise(x, 2.0, gen())
    assert out.min() == 0 and out.max() == 1
    assert ((out == 0) | (out == 1)).float().mean() > 0.5


def test_per_image_sigma():
    x = torch.full((2, 1, 64, 64), 0.5)
    out = noise.gaussian_noise(x, torch.tensor([0.01, 0.1]), gen())
    stds = (out - x).flatten(1).std(1)
    assert abs(stds[0] - 0.01) < 0.001 and abs(stds[1] - 0.1) < 0.01


def test_seeding_reproduces_and_differs():
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(noise.gaussian_noise(x, 0.3, gen(1)), noise.gaussian_noise(x, 0.3, gen(1)))
    assert not torch.equal(noise.gaussian_noise(x, 0.3, gen(1)), noise.gaussian_noise(x, 0.3, gen(2)))


def test_speckle_scales_with_intensity_and_keeps_black_pixels():
    x = torch.zeros(8, 1, 32, 32)
    x[:, :, :16] = 0.4
    out = noise.speckle_noise(x, 0.2, gen())
    assert torch.equal(out[:, :, 16:], x[:, :, 16:])  # x * n is zero where x is zero
    assert abs((out - x)[:, :, :16].std().item() - 0.4 * 0.2) < 0.003


def test_uniform_noise_is_centred_with_the_right_width():
    x = torch.full((32, 1, 32, 32), 0.5)
    change = noise.uniform_noise(x, 0.3, gen()) - x
    assert change.abs().max() <= 0.3 + 1e-6
    assert abs(change.mean().item()) < 0.003
    assert abs(change.std().item() - 0.3 / 3**0.5) < 0.003


def test_draw_levels_only_draws_from_the_set_and_covers_it():
    levels = [0.08, 0.12, 0.18, 0.26, 0.38]
    drawn = noise.draw_levels(levels, 5000, gen())
    values = set(round(v, 6) for v in drawn.tolist())
    assert values == {round(v, 6) for v in levels}
    counts = torch.stack([(drawn - v).abs().lt(1e-6).sum() for v in levels]).float()
    assert counts.min() > 900  # uniform: 1000 each in expectation


def test_mix_batch_keeps_the_clean_half_untouched():
    x = torch.rand(300, 1, 28, 28)
    mixed = noise.mix_batch(x, noise.noise_for({"kind": "gnt", "sigma": 0.5}), 0.5, gen())
    assert noise.clean_count(300, 0.5) == 150
    assert torch.equal(mixed[:150], x[:150])
    changed = (mixed[150:] != x[150:]).flatten(1).any(1)
    assert changed.all()


def test_mix_batch_odd_size_and_vanilla():
    x = torch.rand(7, 1, 4, 4)
    assert noise.mix_batch(x, None, 0.5, gen()) is x
    mixed = noise.mix_batch(x, noise.noise_for({"kind": "speckle", "scales": [0.5]}), 0.5, gen())
    assert torch.equal(mixed[:4], x[:4])  # round(3.5) = 4 clean


def test_gnt_mult_noise_std_per_image_is_one_of_the_levels():
    x = torch.full((200, 1, 28, 28), 0.5)
    out = noise.noise_for({"kind": "gnt_mult", "sigmas": [0.02, 0.08]})(x, gen())
    stds = (out - x).flatten(1).std(1)
    near = torch.minimum((stds - 0.02).abs(), (stds - 0.08).abs())
    assert near.max() < 0.008
    assert (stds < 0.05).any() and (stds > 0.05).any()


def test_unknown_kind_is_rejected():
    try:
        noise.noise_for({"kind": "salt"})
    except ValueError as exc:
        assert "salt" in str(exc) and "gnt" in str(exc)
    else:
        raise AssertionError("unknown kind accepted")
