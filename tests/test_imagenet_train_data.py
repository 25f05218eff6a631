"""The streaming ImageNet training data: augmented batches that depend on (seed, epoch, image) alone,
whichever worker reads them, a resume that continues an epoch exactly, and rank shards that
partition it. Real JPEGs (scikit-image's photographs) in tmp_path."""

from __future__ import annotations

import pytest
import torch

from noisetrain.data.imagenet_train import AugmentedImages, EpochOrder, train_loader
from noisetrain.data.sample_images import make_sample_imagenet
from noisetrain.errors import InputError

BATCH = 4


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_images")
    make_sample_imagenet(root, classes=3, train_per_class=4, val_per_class=1)
    return root / "train"


def batches(train_dir, seed=0, epoch=0, start=0, workers=0, rank=0, world_size=1):
    dataset = AugmentedImages(train_dir, seed)
    order = EpochOrder(len(dataset), seed, rank, world_size)
    order.set_epoch(epoch, start)
    return [(x.clone(), y.clone()) for x, y, _ in train_loader(dataset, order, BATCH, workers=workers)]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_batches_are_augmented_crops_in_zero_one(train_dir):
    run = batches(train_dir)
    assert len(run) == 12 // BATCH
    for x, y in run:
        assert x.shape == (BATCH, 3, 224, 224) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
        assert set(y.tolist()) <= {0, 1, 2}
    labels = torch.cat([y for _, y in run])
    assert sorted(labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4  # every image once per epoch


def test_same_seed_and_epoch_give_the_same_batches_whatever_the_workers(train_dir):
    assert same(batches(train_dir, workers=0), batches(train_dir, workers=2))


def test_another_epoch_or_seed_draws_other_orders_and_crops(train_dir):
    first = batches(train_dir)
    assert not same(first, batches(train_dir, epoch=1))
    assert not same(first, batches(train_dir, seed=1))


def test_the_global_random_stream_is_left_alone(train_dir):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    batches(train_dir)
    assert torch.equal(torch.rand(3), expected)


def test_a_resumed_epoch_continues_with_the_same_batches(train_dir):
    whole = batches(train_dir, epoch=2)
    resumed = batches(train_dir, epoch=2, start=1 * BATCH)
    assert same(resumed, whole[1:])


def test_rank_shards_partition_the_epoch_order():
    orders = [EpochOrder(10, seed=7, rank=rank, world_size=2) for rank in range(2)]
    for order in orders:
        order.set_epoch(3)
    shards = [order.shard() for order in orders]
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10))
    alone = EpochOrder(10, seed=7)
    alone.set_epoch(3)
    assert alone.shard()[0::2] == shards[0] and alone.shard()[1::2] == shards[1]


def test_uneven_shards_drop_the_last_images_so_every_rank_takes_as_many_steps():
    orders = [EpochOrder(11, seed=0, rank=rank, world_size=3) for rank in range(3)]
    assert [len(order) for order in orders] == [3, 3, 3]
    assert len(set(sum((order.shard() for order in orders), []))) == 9


@pytest.mark.parametrize(("size", "rank", "world_size", "start"), [(0, 0, 1, 0), (4, 2, 2, 0), (1, 0, 2, 0), (4, 0, 1, 5)])
def test_bad_orders_are_refused(size, rank, world_size, start):
    with pytest.raises(InputError):
        EpochOrder(size, 0, rank, world_size).set_epoch(0, start)
