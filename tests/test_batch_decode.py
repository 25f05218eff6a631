"""train.decode: gpu's logic, run on the CPU (decode_jpeg with device cpu): the same order, labels,
crop boxes and flips as the PIL path, images within rounding of it, an identical resume mid-epoch, and
files decode_jpeg should not read (PNG, CMYK, truncated, corrupt) going through PIL or named."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torchvision import transforms

from noisetrain.data.batch_decode import EncodedImages, collate_encoded, crop_and_flip, decode_batch
from noisetrain.data.imagenet import load_rgb
from noisetrain.data.imagenet_train import AugmentedImages, train_transform
from noisetrain.data.sample_images import make_sample_imagenet
from noisetrain.errors import DataError, InputError
from noisetrain.seeding import seed_of
from noisetrain.train.folder_source import FolderSource

CROP = 64
# Pixel levels (of 255) the two paths may differ by: PIL resizes in fixed point, torch in float,
# each rounding once; the decoders are both libjpeg-turbo on a CPU (nvJPEG's own rounding adds to it on a GPU).
MAX_LEVELS, MEAN_LEVELS = 2, 0.5


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Short side 160-200 at a 64 crop: the crops are both shrunk and enlarged."""
    root = tmp_path_factory.mktemp("photos")
    classes = make_sample_imagenet(root, classes=3, train_per_class=4, val_per_class=1, size=160)
    return root, classes


def sources(root, classes, **kwargs):
    common = dict(input_size=CROP, **kwargs)
    return (FolderSource(root / "train", root / "val", None, classes, 5, **common),
            FolderSource(root / "train", root / "val", None, classes, 5, decode="gpu", **common))


def batches(source, epoch=1, step=0, size=4):
    return list(source.epoch_batches(SimpleNamespace(epoch=epoch, step=step), size))


def assert_close(pil, decoded):
    levels = (pil - decoded).abs() * 255
    assert levels.max() <= MAX_LEVELS + 1e-3 and levels.mean() <= MEAN_LEVELS, (levels.max(), levels.mean())


def test_same_order_labels_and_images_within_rounding(photos):
    cpu, gpu = sources(*photos)
    assert cpu.dataset.images.samples == gpu.dataset.images.samples
    for (xc, yc, ic), (xg, yg, ig) in zip(batches(cpu), batches(gpu), strict=True):
        assert torch.equal(ic, ig) and torch.equal(yc, yg)
        assert xg.dtype == xc.dtype and xg.shape == xc.shape == (4, 3, CROP, CROP)
        assert_close(xc, xg)


def test_boxes_and_flips_are_the_pil_transforms_draws(photos):
    root, classes = photos
    encoded = EncodedImages(root / "train", 5, CROP, classes=classes)
    crop = transforms.RandomResizedCrop(CROP)
    for index, (path, _) in enumerate(encoded.images.samples):
        with Image.open(path) as image:
            torch.manual_seed(seed_of(5, 0, index))
            expected = (*crop.get_params(image, crop.scale, crop.ratio), bool(torch.rand(1) < 0.5))
        assert tuple(encoded[index][1].tolist()) == expected
        torch.manual_seed(seed_of(5, 0, index))
        assert crop_and_flip(train_transform(CROP), *Image.open(path).size) == expected


def test_a_resumed_epoch_gives_the_same_batches(photos):
    _, gpu = sources(*photos)
    whole = batches(gpu, epoch=2)
    resumed = batches(gpu, epoch=2, step=1)
    assert len(resumed) == len(whole) - 1
    for (x, y, i), (xr, yr, ir) in zip(whole[1:], resumed, strict=True):
        assert torch.equal(x, xr) and torch.equal(y, yr) and torch.equal(i, ir)


def test_workers_give_what_the_main_process_gives(photos):
    _, alone = sources(*photos)
    _, pooled = sources(*photos, workers=2)
    for (x, _, i), (xw, _, iw) in zip(batches(alone), batches(pooled), strict=True):
        assert torch.equal(x, xw) and torch.equal(i, iw)


def test_files_decode_jpeg_should_not_read_take_the_pil_path_exactly(photos, tmp_path):
    root, classes = photos
    copy = tmp_path / "train"
    shutil.copytree(root / "train", copy)
    first, second = sorted((copy / classes[0]).iterdir())[:2]
    Image.open(first).convert("RGB").save(first, format="PNG")  # a PNG named .JPEG, as ImageNet holds one
    Image.open(second).convert("CMYK").save(second, format="JPEG")
    cpu, gpu = (FolderSource(copy, root / "val", None, classes, 5, input_size=CROP, decode=decode) for decode in ("cpu", "gpu"))
    payloads = {i: gpu.dataset[i][0] for i in (0, 1)}
    assert all(isinstance(p, torch.Tensor) for p in payloads.values()) and isinstance(gpu.dataset[2][0], bytes)
    for (xc, _, ic), (xg, _, _) in zip(batches(cpu), batches(gpu), strict=True):
        for row, index in enumerate(ic.tolist()):
            if index in payloads:
                assert torch.equal(xc[row], xg[row])
        assert_close(xc, xg)


def test_a_truncated_file_is_named(photos, tmp_path):
    root, classes = photos
    copy = tmp_path / "train"
    shutil.copytree(root / "train", copy)
    broken = sorted((copy / classes[1]).iterdir())[0]
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    (tmp_path / "val").symlink_to(root / "val")
    _, gpu = sources(tmp_path, classes)
    with pytest.raises(DataError, match=f"cannot read image {broken}.*corrupt or truncated"):
        batches(gpu)


def test_a_batch_that_fails_to_decode_names_the_file(photos):
    root, classes = photos
    encoded = EncodedImages(root / "train", 5, CROP, classes=classes)
    items = [encoded[0], encoded[1]]
    garbage = b"\xff\xd8" + b"\x12" * 300 + b"\xff\xd9"
    payloads, boxes, _, _, paths = collate_encoded(items)
    payloads[1], paths[1] = garbage, "train/n00000000/bad.JPEG"
    with pytest.raises(DataError, match="cannot decode image train/n00000000/bad.JPEG with torchvision"):
        decode_batch(payloads, boxes, paths, CROP, torch.device("cpu"))


def test_an_unknown_decoder_is_refused_and_the_decoder_is_part_of_the_identity(photos):
    cpu, gpu = sources(*photos)
    assert cpu.identity() != gpu.identity()
    with pytest.raises(InputError, match="train.decode is 'nvjpeg'"):
        FolderSource(photos[0] / "train", photos[0] / "val", None, photos[1], 5, decode="nvjpeg")


def test_pil_fallback_round_trip_is_exact():
    """The PIL path's floats are uint8 / 255: the worker's uint8 copy of them loses nothing."""
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(levels.float().div(255).mul(255).round().to(torch.uint8), levels)


def test_the_pil_path_draws_as_torch_manual_seed_would(photos):
    """image_draws seeds the CPU generator alone: the same crops as torch.manual_seed gave before."""
    root, classes = photos
    augmented = AugmentedImages(root / "train", 5, train_transform(CROP), classes=classes)
    augmented.epoch = 3
    for index in (0, 7):
        torch.manual_seed(seed_of(5, 3, index))
        expected = augmented.transform(load_rgb(augmented.images.samples[index][0]))
        assert torch.equal(augmented[index][0], expected)
