"""Tests of the ImageNet data wing: ImageFolder layout checks, evaluation transforms, the stratified
subset, ImageNet-C reading (published layout) and generation, and the offline sample photographs.
Everything runs on real files in tmp_path: scikit-image's photographs and solid-colour JPEGs."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import COLOURS, WNIDS, write_solid, write_tree
from PIL import Image

from noisetrain.data import imagenet as inet
from noisetrain.data import imagenet_c as inc
from noisetrain.data.sample_images import PHOTOS, make_sample_imagenet
from noisetrain.errors import ConfigError, DataError

LAYOUT = "<root>/{train,val}/<wnid>/<image>.JPEG"
@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample_imagenet")
    make_sample_imagenet(root, classes=3, train_per_class=2, val_per_class=4)
    return root


# ---------------------------------------------------------------- layout checks


def test_sample_root_passes_the_layout_check(sample_root):
    classes = inet.check_imagenet_root(sample_root)
    assert classes == ["n00000000", "n00000001", "n00000002"]


def test_evaluation_only_root_needs_only_val(tmp_path):
    write_tree(tmp_path / "val", dict.fromkeys(WNIDS, 1))
    assert inet.check_imagenet_root(tmp_path, require_train=False) == WNIDS
    with pytest.raises(DataError, match="train is missing"):
        inet.check_imagenet_root(tmp_path)


def test_missing_root_names_it_and_the_layout(tmp_path):
    with pytest.raises(DataError) as error:
        inet.check_imagenet_root(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value) and LAYOUT in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_val_names_it(tmp_path):
    write_tree(tmp_path / "train", dict.fromkeys(WNIDS, 1))
    with pytest.raises(DataError) as error:
        inet.check_imagenet_root(tmp_path)
    assert f"{tmp_path / 'val'} is missing" in str(error.value) and LAYOUT in str(error.value)


def test_flat_val_folder_is_explained(tmp_path):
    write_tree(tmp_path / "train", dict.fromkeys(WNIDS, 1))
    write_solid(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG", COLOURS[0], size=32)
    with pytest.raises(DataError, match="holds its images directly, not in one folder per WordNet id"):
        inet.check_imagenet_root(tmp_path)


def test_empty_class_folder_is_an_error(tmp_path):
    write_tree(tmp_path / "val", dict.fromkeys(WNIDS, 1))
    (tmp_path / "val" / "n09999999").mkdir()
    with pytest.raises(DataError, match=r"1 class folder\(s\) without images \(n09999999\)"):
        inet.check_imagenet_root(tmp_path, require_train=False)


def test_train_and_val_classes_must_match(tmp_path):
    write_tree(tmp_path / "train", dict.fromkeys(WNIDS, 1))
    write_tree(tmp_path / "val", dict.fromkeys(WNIDS[:2], 1))
    with pytest.raises(DataError, match=f"only in train: {WNIDS[2]}; only in val: none"):
        inet.check_imagenet_root(tmp_path)


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize(("size", "resized"), [(224, 256), (299, 342)])
def test_eval_transform_resizes_crops_and_keeps_zero_one(sample_root, size, resized):
    assert inet.resize_size(size) == resized
    image = inet.load_rgb(next((sample_root / "val" / "n00000000").iterdir()))
    x = inet.eval_transform(size)(image)
    assert x.shape == (3, size, size) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5  # not normalised
    # The centre of the image resized (bilinear) to a short side of `resized`, as torchvision's evaluation.
    resized_image = image.resize(_short_side(image.size, resized), Image.BILINEAR)
    left, top = round((resized_image.width - size) / 2), round((resized_image.height - size) / 2)
    expected = np.asarray(resized_image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    assert np.abs(x.permute(1, 2, 0).numpy() - expected).max() < 1e-6


def _short_side(wh, short):
    w, h = wh  # torchvision truncates the long side
    return (short, int(h * short / w)) if w <= h else (int(w * short / h), short)


def test_bad_input_size_is_a_config_error():
    with pytest.raises(ConfigError, match="input size 0"):
        inet.eval_transform(0)


@pytest.mark.parametrize("size", [224, 299])
def test_corrupted_transform_keeps_or_resizes_the_224_crop(tmp_path, size):
    image = inet.load_rgb(write_solid(tmp_path / "a.JPEG", COLOURS[1]))
    x = inet.corrupted_transform(size)(image)
    assert x.shape == (3, size, size) and 0.0 <= x.min() and x.max() <= 1.0


# ---------------------------------------------------------------- stratified subset


@pytest.fixture
def uneven(tmp_path) -> Path:
    for wnid, count in zip(["n1", "n2", "n3", "n4"], [10, 10, 2, 10]):
        for i in range(count):
            path = tmp_path / "val" / wnid / f"{i:02d}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")  # only names are listed
    return tmp_path / "val"


def _per_class(files):
    return Counter(name.split("/")[0] for name in files)


def test_subset_is_stratified_as_equal_as_possible(uneven):
    # 17 = 2 (all of the small class) + 5 + 5 + 5
    assert _per_class(inet.stratified_split_files(uneven, 17, seed=0)) == {"n1": 5, "n2": 5, "n3": 2, "n4": 5}
    counts = _per_class(inet.stratified_split_files(uneven, 7, seed=0))
    assert sorted(counts.values()) == [1, 2, 2, 2]
    assert sum(_per_class(inet.stratified_split_files(uneven, 32, seed=0)).values()) == 32


def test_subset_is_deterministic_sorted_and_seeded(uneven):
    first = inet.stratified_split_files(uneven, 9, seed=3)
    assert first == inet.stratified_split_files(uneven, 9, seed=3) == sorted(first)
    assert len(set(first)) == 9 and all((uneven / name).is_file() for name in first)
    assert first != inet.stratified_split_files(uneven, 9, seed=4)


def test_subset_larger_than_the_folder_names_both_numbers(uneven):
    with pytest.raises(ConfigError, match=r"subset of 33 images .* holds 32"):
        inet.stratified_split_files(uneven, 33, seed=0)


# ---------------------------------------------------------------- reading images


def test_files_restrict_the_dataset_and_round_trip(sample_root):
    chosen = inet.stratified_split_files(sample_root / "val", 5, seed=0)
    dataset = inet.image_folder(sample_root / "val", inet.eval_transform(224), files=chosen)
    assert inet.relative_files(dataset) == chosen and len(dataset) == 5
    assert dataset.targets == [int(name.split("/")[0][1:]) for name in chosen]  # n0000000k is class k


def test_val_list_round_trip(sample_root, tmp_path):
    listing = inet.write_val_list(sample_root / "val", 5, seed=0, out=tmp_path / "val.json")
    assert inet.read_val_list(tmp_path / "val.json") == listing
    assert listing["files"] == inet.stratified_split_files(sample_root / "val", 5, seed=0)
    assert listing["classes"] == inet.check_imagenet_root(sample_root)
    everything = inet.write_val_list(sample_root / "val", None, seed=0, out=tmp_path / "all.json")
    assert len(everything["files"]) == 12 and everything["images"] is None
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="bad.json is not the val image list"):
        inet.read_val_list(tmp_path / "bad.json")
    with pytest.raises(DataError, match="cannot read the val image list .*absent.json"):
        inet.read_val_list(tmp_path / "absent.json")


def test_listed_file_that_is_missing_is_named(sample_root):
    with pytest.raises(DataError, match="n00000001/absent.JPEG"):
        inet.image_folder(sample_root / "val", files=["n00000001/absent.JPEG"])


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_image_is_a_data_error_naming_it(sample_root, tmp_path, damage):
    source = next((sample_root / "val" / "n00000000").iterdir()).read_bytes()
    bad = tmp_path / "val" / WNIDS[0] / "bad.JPEG"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(source[: len(source) * 3 // 4] if damage == "truncate" else b"not a jpeg" * 20)
    dataset = inet.image_folder(tmp_path / "val", inet.eval_transform(224))
    with pytest.raises(DataError, match="cannot read image .*bad.JPEG.*corrupt or truncated"):
        dataset[0]


# ---------------------------------------------------------------- ImageNet-C: published layout


def test_corruption_names_follow_the_paper():
    assert len(inc.IMAGENET_C_CORRUPTIONS) == 15 and len(inc.IMAGENET_C_EXTRAS) == 4
    assert inc.IMAGENET_C_CORRUPTIONS[:3] == inc.NOISE_CORRUPTIONS
    assert inc.IMAGENET_C_CORRUPTIONS[-1] == "jpeg_compression"
    assert set(inc.CATEGORIES) == set(inc.IMAGENET_C_CORRUPTIONS + inc.IMAGENET_C_EXTRAS)
    assert Counter(inc.CATEGORIES[n] for n in inc.IMAGENET_C_CORRUPTIONS) == {"noise": 3, "blur": 4, "weather": 4, "digital": 4}
    from imagecorruptions import get_corruption_names

    assert tuple(get_corruption_names("all")) == inc.IMAGENET_C_CORRUPTIONS + inc.IMAGENET_C_EXTRAS


def test_config_time_modules_import_no_numpy():
    # Snakemake's config validation imports these while it builds the job graph.
    code = (
        "import sys, noisetrain.data.corruption_names, noisetrain.data.imagenet_layout; "
        "heavy = {'numpy', 'torch', 'PIL'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def published(tmp_path) -> Path:
    """A fake published ImageNet-C: two corruptions x two severities x 3 classes, plus one extra."""
    root = tmp_path / "imagenet-c"
    for corruption in ("gaussian_noise", "fog", "spatter"):
        for severity in (1, 2):
            for k, wnid in enumerate(WNIDS):
                for i in range(2):
                    write_solid(root / corruption / str(severity) / wnid / f"ILSVRC2012_val_{k}{i}.JPEG", COLOURS[k])
    return root


def test_published_layout_yields_the_known_labels(published):
    folders = inc.check_imagenet_c(published, ["gaussian_noise", "fog"], [1, 2], WNIDS)
    assert folders[("fog", 2)] == published / "fog" / "2" and len(folders) == 4
    dataset = inet.image_folder(folders[("fog", 2)], inet.corrupted_transform(224), classes=WNIDS)
    for x, label in dataset:
        assert int(x.mean(dim=(1, 2)).argmax()) == label  # the colour encodes the class
    assert dataset.targets == [0, 0, 1, 1, 2, 2]


def test_forced_classes_keep_val_indices_when_a_class_is_absent(published):
    folder = published / "fog" / "1"
    for path in (folder / WNIDS[0]).iterdir():
        path.unlink()
    (folder / WNIDS[0]).rmdir()
    with pytest.raises(DataError, match=f"lacks 1 of the 3 class folders \\({WNIDS[0]}\\)"):
        inet.image_folder(folder, classes=WNIDS)
    files = inet.relative_files(inet.image_folder(folder))  # what a subset run generated
    dataset = inet.image_folder(folder, inet.corrupted_transform(224), files=files, classes=WNIDS)
    assert dataset.targets == [1, 1, 2, 2]
    assert [int(x.mean(dim=(1, 2)).argmax()) for x, _ in dataset] == [1, 1, 2, 2]


def test_all_missing_folders_are_listed_in_one_error(published):
    corruptions = ["gaussian_noise", "fog", "snow"]
    with pytest.raises(DataError) as error:
        inc.check_imagenet_c(published, corruptions, [1, 2, 3], WNIDS)
    message = str(error.value)
    assert "lacks 5 folder(s): gaussian_noise/3, fog/3, snow/{1,2,3}" in message
    assert str(published) in message and "\n" not in message


def test_class_mismatch_names_the_folder_and_classes(published):
    (published / "gaussian_noise" / "2" / "n09999999").mkdir()
    with pytest.raises(DataError) as error:
        inc.check_imagenet_c(published, ["gaussian_noise"], [1, 2], WNIDS)
    assert str(published / "gaussian_noise" / "2") in str(error.value) and "unexpected: n09999999" in str(error.value)


def test_unknown_corruption_is_a_config_error(published):
    with pytest.raises(ConfigError, match="unknown ImageNet-C corruption"):
        inc.check_imagenet_c(published, ["rain"], [1], WNIDS)


def test_available_extras(published):
    assert inc.available_extras(published) == ["spatter"]


# ---------------------------------------------------------------- ImageNet-C: generation


@pytest.fixture(scope="module")
def crop(sample_root) -> np.ndarray:
    image = inet.load_rgb(next((sample_root / "val" / "n00000001").iterdir()))
    return np.asarray(inet.eval_crop(224)(image))


@pytest.mark.parametrize("corruption", ["gaussian_noise", "impulse_noise", "frost", "contrast"])
def test_corrupt_image_is_deterministic_per_image(crop, corruption):
    first = inc.corrupt_image(crop, corruption, 3, seed=0, key="a")
    assert first.dtype == np.uint8 and first.shape == crop.shape == (224, 224, 3)
    np.random.seed(123)  # the global state before the call must not matter
    assert np.array_equal(first, inc.corrupt_image(crop, corruption, 3, seed=0, key="a"))
    assert not np.array_equal(first, crop)
    if corruption != "contrast":  # contrast draws nothing
        assert not np.array_equal(first, inc.corrupt_image(crop, corruption, 3, seed=0, key="b"))
        assert not np.array_equal(first, inc.corrupt_image(crop, corruption, 3, seed=1, key="a"))


def test_higher_severity_is_further_from_the_clean_crop(crop):
    def distance(severity):
        return np.abs(inc.corrupt_image(crop, "gaussian_noise", severity, seed=0).astype(float) - crop).mean()

    assert distance(5) > distance(3) > distance(1) > 0


def test_generation_writes_deterministic_224_jpegs(sample_root, tmp_path):
    files = ["n00000000/ILSVRC2012_val_00000001.JPEG", "n00000002/ILSVRC2012_val_00000010.JPEG"]
    outputs = [tmp_path / run / "shot_noise" / "2" for run in ("a", "b")]
    for out in outputs:
        assert inc.generate_corruption(sample_root / "val", out, "shot_noise", 2, files=files, seed=0) == 2
    written = sorted(p.relative_to(outputs[0]).as_posix() for p in outputs[0].rglob("*") if p.is_file())
    assert written == files  # only the listed images, no temporary files left, no folder for class 1
    for name in files:
        first, second = (out / name for out in outputs)
        assert first.read_bytes() == second.read_bytes()
        with Image.open(first) as image:
            assert image.format == "JPEG" and image.size == (224, 224)
    clean = np.asarray(inet.eval_crop(224)(inet.load_rgb(sample_root / "val" / files[0])), dtype=float)
    assert np.abs(np.asarray(inet.load_rgb(outputs[0] / files[0]), dtype=float) - clean).mean() > 5


def test_generation_names_a_corrupt_source_image(tmp_path):
    write_tree(tmp_path / "val", {WNIDS[0]: 1})
    bad = tmp_path / "val" / WNIDS[0] / "ILSVRC2012_val_broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    with pytest.raises(DataError, match="ILSVRC2012_val_broken.JPEG"):
        inc.generate_corruption(tmp_path / "val", tmp_path / "out", "contrast", 1)


# ---------------------------------------------------------------- sample photographs


def test_sample_imagenet_is_deterministic_and_large_enough(sample_root, tmp_path):
    names = make_sample_imagenet(tmp_path, classes=3, train_per_class=2, val_per_class=4)
    assert names == inet.check_imagenet_root(tmp_path)
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.JPEG"))
    assert len(files) == 3 * (2 + 4 + 2)  # train, val and the stylized stand-in of train
    stylized = sorted(f.relative_to("stylized") for f in files if f.parts[0] == "stylized")
    assert stylized == sorted(f.relative_to("train") for f in files if f.parts[0] == "train")
    assert all((tmp_path / f).read_bytes() == (sample_root / f).read_bytes() for f in files)
    for f in files:
        with Image.open(tmp_path / f) as image:
            assert min(image.size) >= 256 and image.mode == "RGB"
    train, val = (sorted((tmp_path / split / names[0]).iterdir()) for split in ("train", "val"))
    assert train[0].read_bytes() != val[0].read_bytes()


def test_too_many_sample_classes_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=f"{len(PHOTOS) + 1} sample classes .* only {len(PHOTOS)}"):
        make_sample_imagenet(tmp_path, classes=len(PHOTOS) + 1)


# ------------------------------------------------------------------ odd files (issue 20, cases 4, 5, 10)


def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    grey = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.JPEG", format="PNG")  # a 16-bit PNG named .JPEG
    Image.fromarray(np.rint(grey / 257).astype(np.uint8)).save(tmp_path / "g8.png")
    got, want = np.asarray(inet.load_rgb(tmp_path / "g16.JPEG")), np.asarray(inet.load_rgb(tmp_path / "g8.png"))
    assert got.shape == (64, 64, 3) and np.array_equal(got, want)
    assert abs(got.mean() - grey.mean() / 257) < 0.5  # not 255 throughout, as PIL's own conversion gives


def test_32_bit_pixels_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.full((8, 8), 70000, np.int32), mode="I").save(tmp_path / "deep.JPEG", format="TIFF")
    with pytest.raises(DataError, match=r"deep\.JPEG holds I pixels .*convert it to an 8-bit image"):
        inet.load_rgb(tmp_path / "deep.JPEG")


def test_an_oversized_image_is_named_as_too_large_not_corrupt(tmp_path, monkeypatch):
    write_solid(tmp_path / "big.JPEG", (10, 20, 30), size=64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 // 4)  # PIL refuses above twice the limit
    with pytest.raises(DataError) as caught:
        inet.load_rgb(tmp_path / "big.JPEG")
    assert "big.JPEG has more pixels than PIL reads" in str(caught.value) and "corrupt" not in str(caught.value)


def test_links_that_lead_to_no_file_are_named(tmp_path):
    make_sample_imagenet(tmp_path, classes=2, train_per_class=1, val_per_class=3, size=48)
    wnid = sorted(p.name for p in (tmp_path / "val").iterdir())[0]
    (tmp_path / "val" / wnid / "gone.JPEG").symlink_to(tmp_path / "nowhere.JPEG")
    with pytest.raises(DataError, match=rf"{wnid} holds 1 link\(s\) that lead to no file \(gone\.JPEG\)"):
        inet.write_val_list(tmp_path / "val", None, 0, tmp_path / "files.json")
    assert not (tmp_path / "files.json").exists()


def test_an_imagenet_c_file_of_another_size_is_named(tmp_path):
    classes = WNIDS[:2]
    for i, wnid in enumerate(classes):
        write_solid(tmp_path / "fog" / wnid / "a.JPEG", COLOURS[i], size=224)
    Image.new("RGB", (200, 224)).save(tmp_path / "fog" / classes[1] / "b.JPEG")
    dataset = inet.image_folder(tmp_path / "fog", inet.corrupted_transform(224), classes=classes, size=(224, 224))
    loader = torch.utils.data.DataLoader(dataset, batch_size=3)
    with pytest.raises(DataError, match=r"b\.JPEG is 200x224, not the 224x224 of the set's other images"):
        next(iter(loader))


def test_a_sample_folder_is_padded_with_links_to_its_photographs(tmp_path):
    from noisetrain.data.sample_images import make_sample_imagenet, pad_train_images

    classes = make_sample_imagenet(tmp_path, classes=2, train_per_class=2, val_per_class=1, size=40)
    pad_train_images(tmp_path / "train", classes, 5)
    for name in classes:
        files = sorted((tmp_path / "train" / name).iterdir())
        assert [f.name for f in files] == [f"{name}_{i}.JPEG" for i in range(5)]
        # 2, 3, 4 are the photographs 0, 1, 0 again: the same file, not new images
        assert [f.stat().st_ino for f in files[2:]] == [files[0].stat().st_ino, files[1].stat().st_ino, files[0].stat().st_ino]
    pad_train_images(tmp_path / "train", classes, 3)  # a folder already large enough stays as it is
    assert len(list((tmp_path / "train" / classes[0]).iterdir())) == 5
