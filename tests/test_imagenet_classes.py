"""Labels of a partial ImageNet (issue 20, case 3): a 1,000-class model is scored against ImageNet's
index of each folder's wnid, not against the folder's position."""

import numpy as np
import pytest
import torch
from helpers import write_tree
from torchvision import models

from noisetrain.data.datasets import PreparedData, Split
from noisetrain.data.imagenet import write_val_list
from noisetrain.data.imagenet_classes import imagenet_labels, imagenet_wnids, relabelled
from noisetrain.data.set_index import write_set_index
from noisetrain.errors import DataError
from noisetrain.measure.imagenet_evaluation import cache_model, predict_model
from noisetrain.measure.prediction_cache import accuracy_records


def test_the_shipped_class_list_is_imagenets_sorted_1000_wnids():
    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert (wnids[0], wnids[1], wnids[999]) == ("n01440764", "n01443537", "n15075141")


def test_labels_map_only_where_a_1000_class_model_meets_a_subset():
    assert imagenet_labels(list(imagenet_wnids()), 1000) is None  # the whole val: folder index = ImageNet's
    assert imagenet_labels(["n01443537", "n15075141"], 2) is None  # one output per folder
    assert imagenet_labels(["n01443537", "n15075141"], 1000).tolist() == [1, 999]
    with pytest.raises(DataError, match=r"1 class folder\(s\) are not ImageNet classes \(n00000007\)"):
        imagenet_labels(["n01443537", "n00000007"], 1000)


def test_relabelled_maps_train_and_test_labels():
    images = np.zeros((3, 3, 4, 4), np.uint8)
    data = PreparedData(Split(images, np.array([0, 1, 1])), Split(images, np.array([1, 0, 0])), np.arange(3), "imagenet")
    mapped = relabelled(data, np.array([1, 999]))
    assert mapped.train.labels.tolist() == [1, 999, 999] and mapped.test.labels.tolist() == [999, 1, 1]


def test_a_1000_class_model_on_two_imagenet_classes_is_scored_by_imagenets_index(tmp_path):
    """The model answers ImageNet class 999 (n15075141) for every image: half the images are of that
    class, so its top-1 is 50% (by folder index it would be 0%)."""
    write_tree(tmp_path / "val", {"n01443537": 2, "n15075141": 2})
    listing = write_val_list(tmp_path / "val", None, 0, tmp_path / "val_files.json")
    index = write_set_index(tmp_path / "val", listing["files"], listing["classes"], "clean", 0, tmp_path / "clean.json")
    net = models.squeezenet1_1(num_classes=1000)
    with torch.no_grad():  # logits relu(bias): class 999 wins everywhere
        net.classifier[1].weight.zero_()
        net.classifier[1].bias.zero_()
        net.classifier[1].bias[999] = 1.0
    torch.save(net.state_dict(), tmp_path / "always999.pt")
    spec = {"architecture": "squeezenet1_1", "weights": str(tmp_path / "always999.pt")}
    out = tmp_path / "predictions" / "m" / "manifest.json"
    predict_model(spec, [tmp_path / "clean.json"], tmp_path / "val_files.json", out, batch_size=4, workers=0,
                  device=torch.device("cpu"), amp=False)
    accuracy = accuracy_records([out])
    assert accuracy.top1.tolist() == [50.0] and index["images"] == 4
    assert cache_model(spec, listing["classes"])[0].endswith(":imagenet-labels")  # caches from before are not reused
