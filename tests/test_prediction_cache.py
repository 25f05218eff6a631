"""The per-image prediction cache: top-5 ids equal a direct evaluation, metrics from the cache equal
metrics computed with the model, and a model is run only on the sets whose entry is missing or stale."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from noisetrain.errors import DataError, InputError
from noisetrain.measure import prediction_cache as pc
from noisetrain.measure.evaluation import array_sets, correct_in_order

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


class LoaderFactory:
    """An ImageSet's loader that counts how often it was called (and the input size it was asked for)."""

    def __init__(self, images, labels):
        self.dataset, self.calls, self.sizes = TensorDataset(images, labels), 0, []

    def __call__(self, size):
        self.calls += 1
        self.sizes.append(size)
        return DataLoader(self.dataset, batch_size=BATCH, shuffle=False)


def image_set(images, labels, corruption="clean", severity=0, content="c0"):
    return pc.ImageSet(corruption, severity, content=content, images=len(labels), loader=LoaderFactory(images, labels))


def evaluate(model_dir, fingerprint, factory, sets):
    return pc.evaluate_model(model_dir, fingerprint, factory, sets, input_size=8, device="cpu")


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

    logits_set = pc.ImageSet("clean", 0, content="fixed", images=4, loader=lambda size: [(logits, labels)])
    evaluate(tmp_path / "id", "identity", nn.Identity, [logits_set])
    records = pc.accuracy_records([tmp_path / "id" / "manifest.json"])
    assert records.to_dict("records") == [
        {"model": "id", "corruption": "clean", "severity": 0, "top1": 25.0, "top5": 75.0, "images": 4}
    ]


def test_cache_metrics_equal_direct_evaluation(tmp_path, data, one_thread):
    images, labels = data
    builds = {"lin": lambda: linear(5), "conv": lambda: conv(6)}
    clean, noisy = images, (images + 0.3 * torch.randn_like(images)).clamp(0, 1)
    for name, build in builds.items():
        sets = [image_set(clean, labels), image_set(noisy, labels, "gaussian_noise", 3, "c1")]
        evaluate(tmp_path / name, f"{name}-weights", build, sets)
    records = pc.accuracy_records([tmp_path / name / "manifest.json" for name in builds])
    assert list(records.columns) == ["model", "corruption", "severity", "top1", "top5", "images"]
    assert len(records) == 4
    for row in records.itertuples():
        source = clean if row.corruption == "clean" else noisy
        top1, top5 = direct_metrics(builds[row.model](), source, labels)
        assert (row.top1, row.top5) == pytest.approx((top1, top5), abs=1e-9)
        assert row.images == N_IMAGES and row.severity == (0 if row.corruption == "clean" else 3)


def test_manifest_lists_every_set_with_entry_key_and_count(tmp_path, data, one_thread):
    images, labels = data
    sets = [image_set(images, labels), image_set(images, labels, "fog", 5, "c5")]
    manifest = evaluate(tmp_path / "a", "fa", lambda: linear(7), sets)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == manifest
    assert manifest["model"] == "a" and manifest["fingerprint"] == "fa"
    assert manifest["sets"] == [
        {"corruption": "clean", "severity": 0, "entry": "clean/0.npz", "key": "fa|c0", "images": N_IMAGES, "computed": True},
        {"corruption": "fog", "severity": 5, "entry": "fog/5.npz", "key": "fa|c5", "images": N_IMAGES, "computed": True},
    ]
    entry = pc.read_entry(tmp_path / "a" / "fog" / "5.npz")
    assert entry["key"] == "fa|c5" and entry["top5"].dtype == np.int16
    assert np.array_equal(entry["labels"], labels.numpy())
    assert sets[0].loader.sizes == [8]  # the model's input size reaches the loader


def test_nothing_missing_decodes_nothing_and_builds_nothing(tmp_path, data, one_thread):
    images, labels = data
    factory = Factory(lambda: linear(9))
    evaluate(tmp_path / "a", "fa", factory, [image_set(images, labels), image_set(images, labels, "fog", 1, "c1")])
    assert factory.calls == 1  # one build for both sets
    entries_before = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*.npz")}

    sets = [image_set(images, labels), image_set(images, labels, "fog", 1, "c1")]
    manifest = evaluate(tmp_path / "a", "fa", factory, sets)
    assert [s.loader.calls for s in sets] == [0, 0] and factory.calls == 1
    assert not any(listed["computed"] for listed in manifest["sets"])
    assert {p: p.read_bytes() for p in (tmp_path / "a").rglob("*.npz")} == entries_before


def test_a_new_set_runs_the_model_on_that_set_only(tmp_path, data, one_thread):
    images, labels = data
    evaluate(tmp_path / "a", "fa", lambda: linear(11), [image_set(images, labels)])
    factory = Factory(lambda: linear(11))
    sets = [image_set(images, labels), image_set(images, labels, "fog", 2, "c2")]
    manifest = evaluate(tmp_path / "a", "fa", factory, sets)
    assert [s.loader.calls for s in sets] == [0, 1]
    assert factory.calls == 1 and factory.model.images == N_IMAGES and factory.model.calls == -(-N_IMAGES // BATCH)
    assert [listed["computed"] for listed in manifest["sets"]] == [False, True]


def test_changed_fingerprint_recomputes_every_set_of_that_model(tmp_path, data, one_thread):
    images, labels = data
    evaluate(tmp_path / "a", "v1", lambda: linear(14), [image_set(images, labels), image_set(images, labels, "fog", 1, "c1")])
    retrained = Factory(lambda: linear(16))
    manifest = evaluate(tmp_path / "a", "v2", retrained, [image_set(images, labels), image_set(images, labels, "fog", 1, "c1")])
    assert [listed["computed"] for listed in manifest["sets"]] == [True, True] and retrained.calls == 1
    with torch.no_grad():
        expected = linear(16)(images).topk(5, dim=1).indices.numpy()
    entry = pc.read_entry(tmp_path / "a" / "clean" / "0.npz")
    assert entry["key"] == "v2|c0" and np.array_equal(entry["top5"], expected)


def test_changed_content_recomputes_that_set_with_the_new_images(tmp_path, data, one_thread):
    """A regenerated set (same names, other images) gets a new content hash: the model runs on it
    again and the cache holds the new images' predictions, the other sets' entries untouched."""
    images, labels = data
    evaluate(tmp_path / "a", "fa", lambda: linear(17), [image_set(images, labels), image_set(images, labels, "fog", 1, "old")])
    clean_entry = (tmp_path / "a" / "clean" / "0.npz").read_bytes()
    regenerated = images.flip(0)
    sets = [image_set(images, labels), image_set(regenerated, labels, "fog", 1, "new")]
    manifest = evaluate(tmp_path / "a", "fa", lambda: linear(17), sets)
    assert [listed["computed"] for listed in manifest["sets"]] == [False, True]
    assert (tmp_path / "a" / "clean" / "0.npz").read_bytes() == clean_entry
    with torch.no_grad():
        expected = linear(17)(regenerated).topk(5, dim=1).indices.numpy()
    assert np.array_equal(pc.read_entry(tmp_path / "a" / "fog" / "1.npz")["top5"], expected)


def test_a_dropped_set_keeps_its_entry_but_is_not_listed(tmp_path, data, one_thread):
    images, labels = data
    evaluate(tmp_path / "a", "fa", lambda: linear(19), [image_set(images, labels), image_set(images, labels, "fog", 1, "c1")])
    manifest = evaluate(tmp_path / "a", "fa", lambda: linear(19), [image_set(images, labels)])
    assert [listed["entry"] for listed in manifest["sets"]] == ["clean/0.npz"] and (tmp_path / "a" / "fog" / "1.npz").exists()
    records = pc.accuracy_records([tmp_path / "a" / "manifest.json"])
    assert records.corruption.tolist() == ["clean"]


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


def test_a_damaged_entry_is_refused_by_name_not_overwritten(tmp_path, data, one_thread):
    images, labels = data
    (tmp_path / "a" / "clean").mkdir(parents=True)
    (tmp_path / "a" / "clean" / "0.npz").write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=r"0\.npz is not a prediction-cache entry.*delete it"):
        evaluate(tmp_path / "a", "fa", lambda: linear(21), [image_set(images, labels)])
    assert (tmp_path / "a" / "clean" / "0.npz").read_bytes() == b"not a zip archive"


def test_loader_that_disagrees_with_the_set_writes_nothing(tmp_path, data, one_thread):
    images, labels = data
    short = pc.ImageSet("clean", 0, content="c", images=N_IMAGES + 1, loader=LoaderFactory(images, labels))
    with pytest.raises(DataError, match="yielded 37 images but the set lists 38"):
        evaluate(tmp_path / "a", "fa", lambda: linear(22), [short])
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").rglob("*.*"))


def test_bad_arguments_are_named(tmp_path, data):
    images, labels = data
    with pytest.raises(InputError, match="cannot name a cache folder"):
        evaluate(tmp_path / ".hidden", "f", lambda: linear(0), [image_set(images, labels)])
    with pytest.raises(InputError, match="no image sets"):
        evaluate(tmp_path / "a", "f", lambda: linear(0), [])
    with pytest.raises(InputError, match="non-empty string"):
        evaluate(tmp_path / "a", "", lambda: linear(0), [image_set(images, labels)])
    with pytest.raises(InputError, match="non-negative integer"):
        evaluate(tmp_path / "a", "f", lambda: linear(0), [image_set(images, labels, "fog", -1)])
    with pytest.raises(InputError, match="cannot name a cache file"):
        evaluate(tmp_path / "a", "f", lambda: linear(0), [image_set(images, labels, "../fog", 1)])
    with pytest.raises(DataError, match="yielded no images"):
        pc.predict_top5({"a": linear(0)}, [], "cpu")
    with pytest.raises(DataError, match="does not exist"):
        pc.accuracy_records([tmp_path / "missing" / "manifest.json"])
    (tmp_path / "old.json").write_text(json.dumps({"models": {}, "files_hash": "x"}))  # a 0.6 per-set manifest
    with pytest.raises(DataError, match="not a model's prediction-cache manifest"):
        pc.accuracy_records([tmp_path / "old.json"])


def test_an_entry_rewritten_after_its_manifest_is_detected(tmp_path, data, one_thread):
    images, labels = data
    evaluate(tmp_path / "a", "fa", lambda: linear(23), [image_set(images, labels)])
    entry = pc.read_entry(tmp_path / "a" / "clean" / "0.npz")
    pc.write_entry(tmp_path / "a" / "clean" / "0.npz", entry["top5"], entry["labels"], "other|key")
    with pytest.raises(DataError, match="rewritten after"):
        pc.accuracy_records([tmp_path / "a" / "manifest.json"])


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


def test_array_sets_split_by_severity_and_correctness_returns_in_array_order(tmp_path, one_thread):
    """The small datasets' sets: one cache set per severity; correctness read back from the cache
    is in the arrays' order and equals the model's own argmax against the labels."""
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (N_IMAGES, 3, 8, 8), dtype=np.uint8)
    labels = generator.integers(0, CLASSES, N_IMAGES)
    severities = generator.integers(1, 4, N_IMAGES)
    sets = array_sets("fog", images, labels, severities, batch_size=BATCH)
    assert [(s.corruption, s.severity, s.images) for s in sets] == [("fog", k, int((severities == k).sum())) for k in (1, 2, 3)]
    assert len({s.content for s in sets}) == 3
    evaluate(tmp_path / "lin", "f", lambda: linear(26), sets)
    entries = {listed["severity"]: entry for listed, entry in pc.cached_entries(tmp_path / "lin" / "manifest.json")}
    with torch.no_grad():
        direct = (linear(26)(torch.from_numpy(images).float() / 255).argmax(1).numpy() == labels)
    assert np.array_equal(correct_in_order(entries, severities, N_IMAGES), direct)
    clean = array_sets("clean", images, labels)
    assert [(s.corruption, s.severity, s.images) for s in clean] == [("clean", 0, N_IMAGES)]
