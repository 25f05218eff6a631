"""The torchvision classifiers: normalisation inside forward, the registry, and weights from files.

No weights can be downloaded in tests: every network is random-init, every checkpoint written here.
"""

import argparse
import fractions
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from torchvision.transforms.functional import normalize

from noisetrain.errors import CheckpointError, ConfigError, InputError
from noisetrain.models import torchvision_models
from noisetrain.models.architecture_names import SMALL_DATA_ARCHITECTURES
from noisetrain.models.architectures import ARCHITECTURES, build_model, register_architecture
from noisetrain.models.madry_cnn import MadryCNN
from noisetrain.models.model_file import load_model, save_model
from noisetrain.models.torchvision_models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_ARCHITECTURES,
    Normalized,
    input_size,
    is_torchvision_weights,
    load_classifier,
    weights_fingerprint,
)

SMALL = "squeezenet1_1"
CLASSES = 10


@pytest.fixture(scope="module")
def source():
    """A small random-init classifier whose weights the checkpoint tests write in every format."""
    return load_classifier(SMALL, None, num_classes=CLASSES, seed=1)


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def torchvision_net(arch, num_classes=CLASSES):
    kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)


def write(obj, path):
    torch.save(obj, path)
    return str(path)


def held_in_memory(checkpoint, monkeypatch, name="in-memory.pth"):
    """A checkpoint 'file' read without the disk (the large networks' files take seconds to write and read)."""
    monkeypatch.setattr(torchvision_models, "read_checkpoint", lambda path: checkpoint if str(path) == name else None)
    return name


# ------------------------------------------------------------------------------------ the networks


def test_registry_holds_every_torchvision_architecture_and_keeps_madry_cnn():
    assert set(ARCHITECTURES) == {*SMALL_DATA_ARCHITECTURES, *TORCHVISION_ARCHITECTURES}  # the names' one list
    assert isinstance(build_model("madry_cnn"), MadryCNN)
    with pytest.raises(InputError, match="'resnet9' is not in noisetrain.models.architecture_names"):
        register_architecture("resnet9")
    assert {"resnet50", "resnet152", "densenet121", "inception_v3", "alexnet"} <= set(TORCHVISION_ARCHITECTURES)


def test_mean_and_std_are_torchvision_s():
    transform = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
    assert tuple(transform.mean) == IMAGENET_MEAN and tuple(transform.std) == IMAGENET_STD


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", SMALL, "resnet18"])
def test_forward_normalises_like_torchvision_on_normalised_input(arch, images):
    model = load_classifier(arch, None, num_classes=CLASSES, seed=0)
    reference = torchvision_net(arch).eval()
    reference.load_state_dict(model.net.state_dict())
    with torch.no_grad():
        ours = model(images)
        theirs = reference(normalize(images, IMAGENET_MEAN, IMAGENET_STD))
    assert ours.shape == (2, CLASSES)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", SMALL, "resnet18"])
def test_state_dict_is_exactly_torchvision_s_under_net(arch):
    model = build_model(arch, 3, CLASSES)
    assert isinstance(model, Normalized)
    assert list(model.state_dict()) == [f"net.{key}" for key in torchvision_net(arch).state_dict()]
    assert model.mean.shape == (1, 3, 1, 1) and "mean" not in model.state_dict()


@pytest.mark.parametrize("arch", ["resnet50", "densenet121", "alexnet"])
def test_paper_architectures_build(arch):
    """Construction only (resnet152 is left out: it takes about a second)."""
    model = build_model(arch, 3, 1000)
    assert isinstance(model, Normalized)
    assert all(key.startswith("net.") for key in model.state_dict())


@pytest.fixture(scope="module")
def inception():
    return load_classifier("inception_v3", None)


def test_inception_v3_returns_plain_logits_at_299_in_eval_mode(inception):
    model = inception
    assert input_size("inception_v3") == 299 and input_size("resnet50") == 224
    assert any(key.startswith("net.AuxLogits.") for key in model.state_dict())
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 299, 299))
    assert torch.is_tensor(logits) and logits.shape == (1, 1000)


def test_input_size_of_an_unknown_architecture_is_a_config_error():
    with pytest.raises(ConfigError, match="resnet9"):
        input_size("resnet9")


def test_architecture_names_import_without_torch():
    code = (
        "import sys, noisetrain.models.architecture_names as a; assert 'torch' not in sys.modules; print(a.input_size('alexnet'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "224", result.stderr


@pytest.mark.parametrize("in_channels", [1, 4])
def test_other_than_three_input_channels_is_a_config_error(in_channels):
    with pytest.raises(ConfigError, match=f"in_channels {in_channels}"):
        build_model(SMALL, in_channels, CLASSES)


def test_random_init_is_deterministic_per_seed_and_leaves_the_global_stream_alone():
    before = torch.get_rng_state()
    first = load_classifier(SMALL, None, num_classes=CLASSES, seed=3).state_dict()
    again = load_classifier(SMALL, None, num_classes=CLASSES, seed=3).state_dict()
    other = load_classifier(SMALL, None, num_classes=CLASSES, seed=4).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_loaded_classifier_is_in_eval_mode(source):
    assert not source.training


# ------------------------------------------------------------------------------------ checkpoint files


def _formats(model, optimizer_state):
    bare = model.net.state_dict()
    with_module = {f"module.{key}": value for key, value in bare.items()}
    return {
        "bare": bare,
        "state_dict": {"state_dict": bare},
        "model": {"model": bare},
        "module_prefix": with_module,
        "module_net_prefix": torch.nn.DataParallel(model).state_dict(),
        "compiled": {f"_orig_mod.{key}": value for key, value in bare.items()},
        "pth_tar": {
            "epoch": 90,
            "arch": SMALL,
            "state_dict": with_module,
            "best_acc1": torch.tensor(61.2),
            "optimizer": optimizer_state,
            "args": argparse.Namespace(lr=0.1, arch=SMALL),
            "best_top5": np.float64(83.1),
        },
        "attacker_model": {
            "model": {
                **{f"module.model.{key}": value for key, value in bare.items()},
                **{f"module.attacker.model.{key}": value for key, value in bare.items()},
                "module.normalizer.new_mean": torch.tensor(IMAGENET_MEAN).view(3, 1, 1),
                "module.attacker.normalizer.new_std": torch.tensor(IMAGENET_STD).view(3, 1, 1),
            },
            "epoch": 3,
        },
    }


@pytest.mark.parametrize(
    "fmt", ["bare", "state_dict", "model", "module_prefix", "module_net_prefix", "compiled", "pth_tar", "attacker_model"]
)
def test_checkpoint_formats_load_to_identical_outputs(fmt, source, images, tmp_path):
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    path = write(_formats(source, optimizer.state_dict())[fmt], tmp_path / f"{fmt}.pth.tar")
    loaded = load_classifier(SMALL, path, num_classes=CLASSES)
    assert isinstance(loaded, Normalized) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(images), source(images))


def test_noisetrain_model_file_round_trips(source, images, tmp_path):
    path = tmp_path / "vanilla.pt"
    save_model(source, path, arch=SMALL, in_channels=3, num_classes=CLASSES, info={"method": "vanilla"})
    loaded = load_classifier(SMALL, str(path), num_classes=CLASSES)
    rebuilt, info = load_model(path)
    with torch.no_grad():
        assert torch.equal(loaded(images), source(images))
        assert torch.equal(rebuilt(images), source(images))
    assert info == {"method": "vanilla"}


def test_noisetrain_model_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "mnist.pt"
    save_model(build_model("madry_cnn"), path, arch="madry_cnn", in_channels=1, num_classes=10, info={})
    with pytest.raises(CheckpointError, match=rf"{path}.*madry_cnn"):
        load_classifier(SMALL, str(path), num_classes=CLASSES)


def test_legacy_densenet_keys_load(monkeypatch):
    """torchvision's own DenseNet files name layers 'norm.1', 'conv.2', ... and predate num_batches_tracked."""
    densenet = build_model("densenet121", 3, CLASSES).net.state_dict()
    legacy = {
        key.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): value
        for key, value in densenet.items()
        if not key.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    loaded = load_classifier("densenet121", held_in_memory(legacy, monkeypatch), num_classes=CLASSES)
    weights = loaded.net.state_dict()
    assert all(torch.equal(weights[key], value) for key, value in densenet.items())


def test_inception_checkpoint_without_aux_head_loads(inception, monkeypatch):
    state = {key: value for key, value in inception.net.state_dict().items() if "AuxLogits" not in key}
    loaded = load_classifier("inception_v3", held_in_memory(state, monkeypatch))
    assert loaded.net.state_dict().keys() == state.keys()
    weights = loaded.net.state_dict()
    assert all(torch.equal(weights[key], value) for key, value in state.items())


def test_key_mismatch_names_the_file_and_the_keys(source, tmp_path):
    state = dict(source.net.state_dict())
    del state["features.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = write({"state_dict": state, "epoch": 1}, tmp_path / "mismatch.pth")
    with pytest.raises(CheckpointError) as error:
        load_classifier(SMALL, path, num_classes=CLASSES)
    message = str(error.value)
    assert path in message
    assert "1 missing keys (features.0.weight)" in message and "1 unexpected keys (extra.weight)" in message


def test_other_number_of_classes_names_the_shapes(source, tmp_path):
    path = write(source.net.state_dict(), tmp_path / "ten.pt")
    with pytest.raises(CheckpointError, match=r"classifier\.1\.weight \[10, 512, 1, 1\] in the file, \[5, 512, 1, 1\]"):
        load_classifier(SMALL, path, num_classes=5)


def test_checkpoint_without_a_state_dict_says_so(tmp_path):
    path = write({"epoch": 3, "arch": SMALL}, tmp_path / "empty.pth.tar")
    with pytest.raises(CheckpointError, match=rf"{path} holds no state dict"):
        load_classifier(SMALL, path, num_classes=CLASSES)


@pytest.mark.parametrize("name", ["missing.pt", "folder/weights", "weights.pth.tar"])
def test_missing_file_is_named_and_never_taken_for_a_weights_name(name, tmp_path):
    path = str(tmp_path / name)
    assert not is_torchvision_weights(path) and not is_torchvision_weights(name)
    with pytest.raises(CheckpointError, match=f"{path} does not exist"):
        load_classifier(SMALL, path, num_classes=CLASSES)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_is_named_with_a_re_download_hint(damage, source, tmp_path):
    full = tmp_path / "full.pt"
    torch.save(source.net.state_dict(), full)
    data = full.read_bytes()
    content = {"truncated": data[: len(data) // 2], "garbage": b"not a checkpoint" * 8, "empty": b""}[damage]
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{path} is truncated or corrupt.*re-download it"):
        load_classifier(SMALL, str(path), num_classes=CLASSES)


def test_objects_weights_only_refuses_are_named(source, tmp_path):
    path = write({"state_dict": source.net.state_dict(), "ratio": fractions.Fraction(1, 3)}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match=rf"{path} holds Python objects.*fractions\.Fraction"):
        load_classifier(SMALL, path, num_classes=CLASSES)


class RunsCode:
    """A pickle payload: loading it without weights_only would call print."""

    def __reduce__(self):
        return (print, ("loaded",))


@pytest.mark.parametrize("how", ["legacy", "plain pickle"])
def test_unsafe_pickles_in_the_legacy_format_are_refused_as_unsafe_not_corrupt(how, source, tmp_path, capsys):
    """torch.save's pre-1.6 format and a bare pickle name no globals up front; the refusal still says
    why (issue 20), and nothing runs."""
    import pickle

    path = tmp_path / "legacy.pth"
    payload = {"state_dict": source.net.state_dict(), "hook": RunsCode()}
    if how == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as caught:
        load_classifier(SMALL, str(path), num_classes=CLASSES)
    message = str(caught.value)
    assert "holds Python objects that weights-only loading refuses" in message and "could run code" in message
    assert "corrupt" not in message and "loaded" not in capsys.readouterr().out


def test_a_noisetrain_file_with_foreign_objects_is_refused_as_unsafe(tmp_path):
    from noisetrain.storage import load_torch

    path = tmp_path / "last.pt"
    torch.save({"hook": RunsCode()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"last.pt holds Python objects .*could run code.*not a noisetrain file"):
        load_torch(path)


# ------------------------------------------------------------------------------------ weights names


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ("DEFAULT", True),
        ("IMAGENET1K_V2", True),
        ("ResNet50_Weights.IMAGENET1K_V1", True),
        ("MobileNet_V3_Small_Weights.IMAGENET1K_V1", True),
        ("models/resnet50.pt", False),
        ("resnet50.pth", False),
        ("gnt.pth.tar", False),
        ("weights.ckpt", False),
        ("", False),
    ],
)
def test_is_torchvision_weights(weights, expected):
    assert is_torchvision_weights(weights) is expected


def test_an_existing_file_is_a_file_whatever_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "DEFAULT").write_bytes(b"x")
    assert not is_torchvision_weights("DEFAULT")


@pytest.mark.parametrize("weights", ["ext.pkl", "w.gz", "w.zip", "w.safetensors", "sub/ext", "./ext",
                                     "ResNet50_Weights.IMAGENET1K_V1", "DEFAULT", "random", "ext"])
def test_a_weights_entry_is_a_file_by_the_loaders_rule(weights, tmp_path, monkeypatch):
    """Snakemake's inputs (config_names.looks_like_file) and the loader decide alike (issue 20, case 2):
    every entry the loader reads as a file is an input, so that replacing it reruns its jobs."""
    from noisetrain.config_names import looks_like_file
    from noisetrain.measure.imagenet_evaluation import model_weights

    monkeypatch.chdir(tmp_path)
    loaded = model_weights({"weights": weights})  # None: a random init
    read_as_file = loaded is not None and not is_torchvision_weights(loaded)
    assert looks_like_file(weights) is read_as_file
    assert looks_like_file(weights) is (weights not in ("ResNet50_Weights.IMAGENET1K_V1", "DEFAULT", "random", "ext"))
    (tmp_path / "ext").write_bytes(b"x")  # an existing file with a name-like name is a file, for both
    assert looks_like_file("ext") and not is_torchvision_weights("ext")


def test_unknown_weights_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"IMAGENET1K_V9.*ResNet50_Weights\.IMAGENET1K_V1, ResNet50_Weights\.IMAGENET1K_V2"):
        load_classifier("resnet50", "IMAGENET1K_V9")
    with pytest.raises(ConfigError, match=r"not resnet50's \(ResNet50_Weights\)"):
        load_classifier("resnet50", "ResNet18_Weights.IMAGENET1K_V1")


def test_torchvision_weights_need_a_thousand_classes():
    with pytest.raises(ConfigError, match="1000 classes, not num_classes 10"):
        load_classifier("resnet18", "IMAGENET1K_V1", num_classes=10)


def test_unknown_architecture_is_a_config_error():
    with pytest.raises(ConfigError, match="resnet9"):
        load_classifier("resnet9", None)


# ------------------------------------------------------------------------------------ fingerprints


def test_fingerprint_of_random_init_and_torchvision_names():
    assert weights_fingerprint(None, seed=7) == weights_fingerprint(None, 7) == "random-init:7"
    assert weights_fingerprint("DEFAULT", architecture="resnet50") == "ResNet50_Weights.IMAGENET1K_V2"
    assert weights_fingerprint("imagenet1k_v1", architecture="resnet50") == "ResNet50_Weights.IMAGENET1K_V1"
    assert weights_fingerprint("AlexNet_Weights.IMAGENET1K_V1") == "AlexNet_Weights.IMAGENET1K_V1"
    with pytest.raises(InputError, match="DEFAULT"):
        weights_fingerprint("DEFAULT")


def test_fingerprint_of_a_file_follows_its_content(source, tmp_path):
    first = write(source.net.state_dict(), tmp_path / "a.pt")
    copy = tmp_path / "elsewhere" / "b.pt"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "a.pt").read_bytes())
    fingerprint = weights_fingerprint(first)
    assert fingerprint.startswith(f"file:{copy.stat().st_size}:")
    assert weights_fingerprint(first) == fingerprint == weights_fingerprint(str(copy), 3, SMALL)
    data = bytearray(copy.read_bytes())
    data[-100] ^= 1
    copy.write_bytes(bytes(data))
    assert weights_fingerprint(str(copy)) != fingerprint
    with pytest.raises(CheckpointError, match="gone.pt does not exist"):
        weights_fingerprint(str(tmp_path / "gone.pt"))
