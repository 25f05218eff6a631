"""The per-image prediction cache: top-5 ids equal a direct evaluation, metrics from the cache equal
metrics computed with the model, and a set is decoded only for the models whose entry is missing."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from noisetrain.errors import DataError, InputError
from noisetrain.measure import prediction_cache as pc

N_IMAGES, CLASSES, BATCH = 37, 10, 8  # 37: the last batch is a partial one


class Counting(nn.Module):
    """Wraps a model and counts its forward calls and the images it saw."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.calls, self.images = model, 0, 0

    def forward(self, x):
        self.calls += 1
        self.images += len(x)
        return self.model(x)


def linear(seed: int, classes: int = CLASSES) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes))


def conv(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, CLASSES))


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(N_IMAGES, 3, 8, 8, generator=generator)
    labels = torch.randint(0, CLASSES, (N_IMAGES,), generator=generator)
    return images, labels


@pytest.fixture(scope="module")
def files():
    return [f"n{i % 3:08d}/img_{i:05d}.JPEG" for i in range(N_IMAGES)]


class LoaderFactory:
    """make_loader for evaluate_set that counts how often it was called."""

    def __init__(self, images, labels):
        self.dataset, self.calls = TensorDataset(images, labels), 0

    def __call__(self):
        self.calls += 1
        return DataLoader(self.dataset, batch_size=BATCH, shuffle=False)


class Factory:
    """A model factory that counts builds and keeps the built (counting) model."""

    def __init__(self, build):
        self.build, self.calls, self.model = build, 0, None

    def __call__(self):
        self.calls += 1
        self.model = Counting(self.build())
        return self.model


def direct_metrics(model: nn.Module, images, labels) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (percent) computed with the model, without the cache."""
    with torch.no_grad():
        logits = model.eval()(images)
    top1 = (logits.argmax(1) == labels).double().mean().item() * 100
    top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(1).double().mean().item() * 100
    return top1, top5


def test_predict_top5_equals_direct_top5_best_first(data, one_thread):
    images, labels = data
    models = {"lin": linear(1), "conv": conv(2)}
    top5, cached_labels = pc.predict_top5(models, DataLoader(TensorDataset(images, labels), batch_size=BATCH), "cpu")
    assert cached_labels.dtype == np.int16 and np.array_equal(cached_labels, labels.numpy())
    for name, model in models.items():
        with torch.no_grad():
            logits = model(images)
        assert top5[name].dtype == np.int16 and top5[name].shape == (N_IMAGES, 5)
        assert np.array_equal(top5[name], logits.topk(5, dim=1).indices.numpy())
        # best first: the logits at the cached ids decrease along each row, and the first is the argmax
        ranked = torch.gather(logits, 1, torch.from_numpy(top5[name]).long())
        assert (ranked[:, :-1] >= ranked[:, 1:]).all()
        assert np.array_equal(top5[name][:, 0], logits.argmax(1).numpy())


def test_predict_top5_leaves_models_trainable_in_their_mode(data, one_thread):
    images, labels = data
    model = conv(3).train()
    pc.predict_top5({"m": model}, [(images, labels)], "cpu")
    assert model.training
    # parameters were not turned into inference tensors: the model still trains
    nn.functional.cross_entropy(model(images), labels).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fewer_than_five_classes_keeps_all_classes_ranked(data, one_thread):
    images, labels = data
    labels = labels % 3
    top5, _ = pc.predict_top5({"three": linear(4, classes=3)}, [(images, labels)], "cpu")
    assert top5["three"].shape == (N_IMAGES, 3)
    assert (np.sort(top5["three"], axis=1) == [0, 1, 2]).all()
    assert pc.accuracies(top5["three"], labels.numpy())[1] == 100.0


def test_hand_computed_top1_top5_from_fixed_logits(tmp_path):
    # Each "image" is its own logits row (the model is the identity), over 7 classes.
    logits = torch.tensor(
        [
            [0.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # ranking 1, 6, 5, 4, 3, 2, 0
            [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],  # ranking 0, 1, 2, 3, 4, 5, 6
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],  # ranking 6, 5, 4, 3, 2, 1, 0
            [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0],  # ranking 5, 4, 2, 0, 6, 3, 1
        ]
    )
    labels = torch.tensor([1, 4, 0, 6])  # top-1 hit, rank 5 (top-5 hit), last (miss), rank 5 (top-5 hit)
    top5, _ = pc.predict_top5({"id": nn.Identity()}, [(logits, labels)], "cpu")
    assert top5["id"].tolist() == [[1, 6, 5, 4, 3], [0, 1, 2, 3, 4], [6, 5, 4, 3, 2], [5, 4, 2, 0, 6]]
    assert pc.accuracies(top5["id"], labels.numpy()) == (25.0, 75.0)

    files = [f"c/{i}.png" for i in range(4)]
    pc.evaluate_set(tmp_path, {"id": ("identity", nn.Identity)}, lambda: [(logits, labels)], files, "cpu")
    records = pc.accuracy_records([tmp_path / "manifest.json"], [("clean", 0)])
    assert records.to_dict("records") == [
        {"model": "id", "corruption": "clean", "severity": 0, "top1": 25.0, "top5": 75.0, "images": 4}
    ]


def test_cache_metrics_equal_direct_evaluation(tmp_path, data, files, one_thread):
    images, labels = data
    builds = {"lin": lambda: linear(5), "conv": lambda: conv(6)}
    models = {name: (f"{name}-weights", build) for name, build in builds.items()}
    clean, noisy = images, (images + 0.3 * torch.randn_like(images)).clamp(0, 1)
    pc.evaluate_set(tmp_path / "clean", models, LoaderFactory(clean, labels), files, "cpu")
    pc.evaluate_set(tmp_path / "gauss3", models, LoaderFactory(noisy, labels), files, "cpu")
    records = pc.accuracy_records(
        [tmp_path / "clean" / "manifest.json", tmp_path / "gauss3" / "manifest.json"], [("clean", 0), ("gaussian_noise", 3)]
    )
    assert list(records.columns) == ["model", "corruption", "severity", "top1", "top5", "images"]
    assert len(records) == 4
    for row in records.itertuples():
        source = clean if row.corruption == "clean" else noisy
        top1, top5 = direct_metrics(builds[row.model](), source, labels)
        assert (row.top1, row.top5) == pytest.approx((top1, top5), abs=1e-9)
        assert row.images == N_IMAGES and row.severity == (0 if row.corruption == "clean" else 3)


def test_manifest_lists_every_model_with_entry_key_and_count(tmp_path, data, files, one_thread):
    images, labels = data
    manifest = pc.evaluate_set(
        tmp_path, {"a": ("fa", lambda: linear(7)), "b": ("fb", lambda: conv(8))}, LoaderFactory(images, labels), files, "cpu"
    )
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    set_hash = pc.files_hash(files)
    assert manifest["images"] == N_IMAGES and manifest["files_hash"] == set_hash
    assert manifest["computed"] == ["a", "b"] and manifest["reused"] == []
    assert manifest["models"]["a"] == {"entry": "a.npz", "key": f"fa|{set_hash}", "images": N_IMAGES, "computed": True}
    entry = pc.read_entry(tmp_path / "b.npz")
    assert entry["key"] == f"fb|{set_hash}" and entry["top5"].dtype == np.int16
    assert np.array_equal(entry["labels"], labels.numpy())


def test_nothing_missing_decodes_nothing_and_builds_nothing(tmp_path, data, files, one_thread):
    images, labels = data
    factories = {"a": Factory(lambda: linear(9)), "b": Factory(lambda: conv(10))}
    models = {name: (f"f{name}", factory) for name, factory in factories.items()}
    first_loader = LoaderFactory(images, labels)
    pc.evaluate_set(tmp_path, models, first_loader, files, "cpu")
    assert first_loader.calls == 1 and all(f.calls == 1 for f in factories.values())
    entries_before = {name: (tmp_path / f"{name}.npz").read_bytes() for name in factories}

    loader = LoaderFactory(images, labels)
    manifest = pc.evaluate_set(tmp_path, models, loader, files, "cpu")
    assert loader.calls == 0
    assert all(f.calls == 1 for f in factories.values())
    assert manifest["computed"] == [] and manifest["reused"] == ["a", "b"]
    assert not any(listed["computed"] for listed in manifest["models"].values())
    assert {name: (tmp_path / f"{name}.npz").read_bytes() for name in factories} == entries_before


def test_adding_a_model_runs_only_that_model_in_one_pass(tmp_path, data, files, one_thread):
    images, labels = data
    old = {"a": Factory(lambda: linear(11)), "b": Factory(lambda: conv(12))}
    pc.evaluate_set(tmp_path, {n: (f"f{n}", f) for n, f in old.items()}, LoaderFactory(images, labels), files, "cpu")

    new = Factory(lambda: linear(13))
    loader = LoaderFactory(images, labels)
    models = {**{n: (f"f{n}", f) for n, f in old.items()}, "c": ("fc", new)}
    manifest = pc.evaluate_set(tmp_path, models, loader, files, "cpu")
    assert loader.calls == 1
    assert new.calls == 1 and new.model.images == N_IMAGES and new.model.calls == -(-N_IMAGES // BATCH)
    assert all(f.calls == 1 for f in old.values())  # the old models were not even built again
    assert manifest["computed"] == ["c"] and manifest["reused"] == ["a", "b"]
    assert list(manifest["models"]) == ["a", "b", "c"]
    top1, top5 = direct_metrics(linear(13), images, labels)
    assert pc.accuracies(pc.read_entry(tmp_path / "c.npz")["top5"], labels.numpy()) == pytest.approx((top1, top5))


def test_changed_fingerprint_recomputes_that_model_only(tmp_path, data, files, one_thread):
    images, labels = data
    pc.evaluate_set(
        tmp_path, {"a": ("v1", lambda: linear(14)), "b": ("v1", lambda: conv(15))}, LoaderFactory(images, labels), files, "cpu"
    )
    retrained = Factory(lambda: linear(16))
    manifest = pc.evaluate_set(
        tmp_path, {"a": ("v2", retrained), "b": ("v1", lambda: conv(15))}, LoaderFactory(images, labels), files, "cpu"
    )
    assert manifest["computed"] == ["a"] and manifest["reused"] == ["b"] and retrained.calls == 1
    assert pc.read_entry(tmp_path / "a.npz")["key"].startswith("v2|")
    with torch.no_grad():
        expected = linear(16)(images).topk(5, dim=1).indices.numpy()
    assert np.array_equal(pc.read_entry(tmp_path / "a.npz")["top5"], expected)


def test_changed_file_list_recomputes_every_model(tmp_path, data, files, one_thread):
    images, labels = data
    models = {"a": ("fa", lambda: linear(17)), "b": ("fb", lambda: conv(18))}
    pc.evaluate_set(tmp_path, models, LoaderFactory(images, labels), files, "cpu")
    renamed = [*files[:-1], "n00000002/other.JPEG"]
    manifest = pc.evaluate_set(tmp_path, models, LoaderFactory(images, labels), renamed, "cpu")
    assert manifest["computed"] == ["a", "b"] and manifest["files_hash"] == pc.files_hash(renamed)


def test_a_dropped_model_keeps_its_entry_but_is_not_listed(tmp_path, data, files, one_thread):
    images, labels = data
    pc.evaluate_set(
        tmp_path, {"a": ("fa", lambda: linear(19)), "b": ("fb", lambda: conv(20))}, LoaderFactory(images, labels), files, "cpu"
    )
    loader = LoaderFactory(images, labels)
    manifest = pc.evaluate_set(tmp_path, {"a": ("fa", lambda: linear(19))}, loader, files, "cpu")
    assert loader.calls == 0 and list(manifest["models"]) == ["a"] and (tmp_path / "b.npz").exists()
    records = pc.accuracy_records([tmp_path / "manifest.json"], [("clean", 0)])
    assert records.model.tolist() == ["a"]


def test_files_hash_depends_on_names_and_order_only():
    assert pc.files_hash(["a/1.png", "b/2.png"]) == pc.files_hash(["a/1.png", "b/2.png"])
    assert pc.files_hash(["a/1.png", "b/2.png"]) != pc.files_hash(["b/2.png", "a/1.png"])
    assert pc.files_hash(["ab", "c"]) != pc.files_hash(["a", "bc"])
    assert len(pc.files_hash([])) == 64
    with pytest.raises(InputError, match="list of relative file paths"):
        pc.files_hash("a/1.png")


def test_entry_round_trip_and_missing_entry(tmp_path):
    top5 = np.array([[3, 1, 2, 0, 4], [0, 1, 2, 3, 4]])
    path = pc.write_entry(tmp_path / "m.npz", top5, np.array([3, 2]), "fp|hash")
    entry = pc.read_entry(path)
    assert entry["key"] == "fp|hash" and entry["top5"].dtype == np.int16 and entry["labels"].tolist() == [3, 2]
    assert np.array_equal(entry["top5"], top5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left behind
    assert pc.read_entry(tmp_path / "absent.npz") is None
    with pytest.raises(InputError, match="shapes"):
        pc.write_entry(tmp_path / "bad.npz", top5, np.array([1, 2, 3]), "k")


def test_a_damaged_entry_is_refused_by_name_not_overwritten(tmp_path, data, files, one_thread):
    images, labels = data
    (tmp_path / "a.npz").write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=r"a\.npz is not a prediction-cache entry.*delete it"):
        pc.evaluate_set(tmp_path, {"a": ("fa", lambda: linear(21))}, LoaderFactory(images, labels), files, "cpu")
    assert (tmp_path / "a.npz").read_bytes() == b"not a zip archive"


def test_loader_that_disagrees_with_the_file_list_writes_nothing(tmp_path, data, files, one_thread):
    images, labels = data
    with pytest.raises(DataError, match="yielded 37 images but the set lists 38 files"):
        pc.evaluate_set(tmp_path, {"a": ("fa", lambda: linear(22))}, LoaderFactory(images, labels), [*files, "x.png"], "cpu")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_bad_arguments_are_named(tmp_path, data, files):
    images, labels = data
    with pytest.raises(InputError, match="cannot name a cache file"):
        pc.evaluate_set(tmp_path, {"../a": ("f", lambda: linear(0))}, LoaderFactory(images, labels), files, "cpu")
    with pytest.raises(InputError, match="no models"):
        pc.evaluate_set(tmp_path, {}, LoaderFactory(images, labels), files, "cpu")
    with pytest.raises(DataError, match="yielded no images"):
        pc.predict_top5({"a": linear(0)}, [], "cpu")
    with pytest.raises(InputError, match="2 manifests but 1"):
        pc.accuracy_records([tmp_path / "x.json", tmp_path / "y.json"], [("clean", 0)])
    with pytest.raises(DataError, match="does not exist"):
        pc.accuracy_records([tmp_path / "missing" / "manifest.json"], [("clean", 0)])


def test_an_entry_rewritten_after_its_manifest_is_detected(tmp_path, data, files, one_thread):
    images, labels = data
    pc.evaluate_set(tmp_path, {"a": ("fa", lambda: linear(23))}, LoaderFactory(images, labels), files, "cpu")
    entry = pc.read_entry(tmp_path / "a.npz")
    pc.write_entry(tmp_path / "a.npz", entry["top5"], entry["labels"], "other|key")
    with pytest.raises(DataError, match="rewritten after"):
        pc.accuracy_records([tmp_path / "manifest.json"], [("clean", 0)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_agrees_with_cpu_float32(data):
    images, labels = data
    images = images.repeat(8, 1, 1, 1)
    labels = labels.repeat(8)
    model = conv(24)
    with torch.no_grad():
        reference = model(images).topk(5, dim=1).indices.numpy()
    loader = DataLoader(TensorDataset(images, labels), batch_size=64, pin_memory=True)
    exact, _ = pc.predict_top5({"m": model}, loader, "cuda", amp=False)
    mixed, cached_labels = pc.predict_top5({"m": model}, loader, "cuda", amp=True)
    assert np.array_equal(cached_labels, labels.numpy())
    assert (exact["m"][:, 0] == reference[:, 0]).mean() > 0.99
    # bf16 logits may swap near-ties; the top-1 must still agree on the vast majority of images
    assert (mixed["m"][:, 0] == reference[:, 0]).mean() > 0.9
    assert mixed["m"].shape == reference.shape and mixed["m"].dtype == np.int16


def test_manifests_that_name_their_set_need_no_set_names(tmp_path, data, files, one_thread):
    images, labels = data
    models = {"a": ("fa", lambda: linear(25))}
    clean = pc.evaluate_set(tmp_path / "clean", models, LoaderFactory(images, labels), files, "cpu", set_name=("clean", 0))
    assert (clean["corruption"], clean["severity"]) == ("clean", 0)
    pc.evaluate_set(tmp_path / "fog5", models, LoaderFactory(images, labels), files, "cpu", set_name=("fog", 5))
    paths = [tmp_path / "clean" / "manifest.json", tmp_path / "fog5" / "manifest.json"]
    records = pc.accuracy_from_manifests(paths)
    assert records[["model", "corruption", "severity"]].values.tolist() == [["a", "clean", 0], ["a", "fog", 5]]
    assert records.equals(pc.accuracy_records(paths, [("clean", 0), ("fog", 5)]))

    pc.evaluate_set(tmp_path / "anonymous", models, LoaderFactory(images, labels), files, "cpu")
    with pytest.raises(DataError, match="does not say which corruption and severity"):
        pc.accuracy_from_manifests([tmp_path / "anonymous" / "manifest.json"])
    with pytest.raises(InputError, match=r"must be \(corruption, severity\)"):
        pc.evaluate_set(tmp_path / "bad", models, LoaderFactory(images, labels), files, "cpu", set_name=("fog", "5"))
    with pytest.raises(InputError, match="non-negative integer"):
        pc.accuracy_records(paths[:1], [("clean", -1)])
