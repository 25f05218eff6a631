"""Small datasets at device speed (issue 21): a prepared dataset's arrays live on the training device,
batches are index gathers there, the method steps' metrics stay on the device until the trainer reads
many steps' at once, with the same numbers as summing them as floats on the host."""

import csv

import numpy as np
import torch
from test_training import SPEC

from noisetrain.host_values import read_floats
from noisetrain.op_count import OpCount
from noisetrain.train import trainer as training
from noisetrain.train.epoch_sums import EpochSums
from noisetrain.train.sources import ArraySource, as_source
from noisetrain.train.step_log import StepLog


def test_read_floats_gives_the_floats_the_tensors_hold_in_order():
    metrics = {"loss": torch.tensor(0.1), "count": 3, "rate": torch.tensor(float("nan")), "acc": torch.tensor(2 / 3)}
    read = read_floats(metrics)
    assert list(read) == ["loss", "count", "rate", "acc"]
    assert read["loss"] == float(np.float32(0.1)) and read["acc"] == float(np.float32(2 / 3))  # float32's, exactly
    assert read["count"] == 3.0 and np.isnan(read["rate"])
    assert all(type(value) is float for value in read.values())
    assert read_floats({}) == {}


def test_a_prepared_dataset_lives_on_the_training_device(tiny_digits):
    # "meta" holds shapes only: every array and index must be on the given device for this to run
    source = as_source(tiny_digits, {}, "meta")
    assert {t.device.type for t in (source.x_train, source.y_train, source.x_test, source.y_test)} == {"meta"}
    state = training.TrainState(None, None, None, torch.Generator().manual_seed(0), None)
    x, y, index = next(source.epoch_batches(state, 7))
    assert (x.device.type, y.device.type, index.device.type) == ("meta", "meta", "meta")
    assert x.shape == (7, *tiny_digits.train.images.shape[1:])
    x, y = next(source.random_batches(1, 5, torch.Generator().manual_seed(0)))
    assert x.device.type == "meta" and len(y) == 5


def test_the_device_order_is_the_host_order(tiny_digits):
    """The permutation is drawn on the CPU from the checkpointed stream, whatever the device."""
    batches = []
    for source in (ArraySource(tiny_digits), as_source(tiny_digits, {}, "cpu")):
        state = training.TrainState(None, None, None, torch.Generator().manual_seed(5), None)
        batches.append(torch.cat([index for _, _, index in source.epoch_batches(state, 9)]))
    assert torch.equal(*batches) and sorted(batches[0].tolist()) == list(range(len(tiny_digits.train.labels)))


def _one_epoch(data):
    """A one-epoch run's spec, source and state before its first step."""
    spec = {**SPEC, "epochs": 1}
    source = as_source(data, spec)
    return spec, source, training.build_state(spec, source, None, torch.device("cpu"))


def test_steps_return_device_tensors_and_the_epoch_means_equal_host_float_sums(tiny_digits, tmp_path):
    spec, source, state = _one_epoch(tiny_digits)
    seen = []
    step = state.method.step

    def recording(*args):
        metrics = step(*args)
        assert all(isinstance(value, torch.Tensor) for value in metrics.values())  # nothing read per step
        seen.append((read_floats(metrics), len(args[-1])))
        return metrics

    state.method.step = recording
    means = training.run_epoch(state, source, spec["batch_size"], "epoch")
    images = 0.0
    totals = {}
    for metrics, n in seen:  # the trainer's sums before issue 21: Python floats, in step order
        for key, value in metrics.items():
            totals[key] = totals.get(key, 0.0) + value * n
        images += n
    assert means == {**{key: total / images for key, total in totals.items()}, "images": images}


def test_epoch_sums_wait_for_settle_then_give_float_sums_and_rows(tmp_path):
    sums = EpochSums({"loss": 1.5, "images": 3.0})  # a resumed epoch's sums so far
    sums.add({"loss": torch.tensor(0.25), "accuracy": torch.tensor(0.5)}, 4, {"epoch": 1, "step": 2, "lr": 0.1})
    sums.add({"loss": torch.tensor(0.125), "accuracy": 1.0}, 2, None)  # a float metric; a row not logged
    assert sums.totals == {"loss": 1.5, "images": 3.0}  # nothing read before settle
    rows = sums.settle()
    assert rows == [{"epoch": 1, "step": 2, "lr": 0.1, "loss": 0.25, "accuracy": 0.5}]
    assert sums.totals == {"loss": 1.5 + 0.25 * 4 + 0.125 * 2, "images": 9.0, "accuracy": 0.5 * 4 + 1.0 * 2}
    assert sums.last == {"loss": 0.125, "accuracy": 1.0} and sums.settle() == []
    assert sums.means() == {"loss": 2.75 / 9, "accuracy": 4.0 / 9, "images": 9.0}
    log = StepLog(tmp_path / "steps.csv")
    log.keep_until(0)
    log.write(rows)
    log.close()
    with open(tmp_path / "steps.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == [{"epoch": "1", "step": "2", "loss": "0.25", "accuracy": "0.5", "lr": "0.1",
                                                 "images_per_second": "", "gpu_memory_mb": ""}]


def test_the_trainer_launches_no_work_of_its_own_between_steps(tiny_digits, tmp_path):
    """Per step, besides the method step's operations, only the batch's two index gathers (on a GPU
    each operation is a kernel launch that a small network's step waits for); the metrics are read
    and summed once, at the end (with the step log's rows)."""
    spec, source, state = _one_epoch(tiny_digits)
    in_steps = []
    step = state.method.step

    def counted(*args):
        with OpCount() as count:
            metrics = step(*args)
        in_steps.append(count.ops)
        return metrics

    state.method.step = counted
    log = StepLog(tmp_path / "steps.csv")
    log.keep_until(0)
    with OpCount() as total:
        training.run_epoch(state, source, spec["batch_size"], "epoch", step_log=log)
    log.close()
    steps = len(in_steps)
    assert steps == source.steps_per_epoch(spec["batch_size"]) > 2
    # the epoch's permutation and its copy, two gathers a step, and one read of every metric at the end
    assert total.ops - sum(in_steps) <= 2 + 2 * steps + 2


def test_op_count_counts_operations_not_views():
    a = torch.ones(2, 3)
    with OpCount() as count:
        b = (a + 1).view(3, 2).t()  # one addition; the view and the transpose launch nothing
        torch.mean(b > 1, dtype=torch.float32)
    assert count.ops == 3 and count.by_op == {"aten.add": 1, "aten.gt": 1, "aten.mean": 1}
