"""Data-parallel training (noisetrain.train.distributed): the launchers' environments, and two CPU
processes (gloo on 127.0.0.1) training on a tiny image folder: they reach the weights one process
reaches on the same whole batch, keep one ANT generator between them, and a run one of them is
asked to stop resumes to the uninterrupted run's weights."""

import contextlib
import faulthandler
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from helpers import StopAfter
from torch import nn

from noisetrain.data.imagenet import read_val_list, write_val_list
from noisetrain.data.sample_images import make_sample_imagenet
from noisetrain.errors import CheckpointError, ConfigError, Preempted
from noisetrain.models.model_file import load_model, read_model_file
from noisetrain.models.torchvision_models import load_classifier
from noisetrain.noise.generator_bank import cpu_state
from noisetrain.train import distributed, trainer
from noisetrain.train.ant import AntStep
from noisetrain.train.distributed import World, world_from_env
from noisetrain.train.folder_source import FolderSource
from noisetrain.train.folder_training import train_on_folder
from noisetrain.train.noise_step import NoiseStep
from noisetrain.train.sources import ArraySource
from noisetrain.train.steps import Stream, stream_seed

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = "squeezenet1_1"  # no BatchNorm: its batch statistics are each process's own by design
SCHEDULE = {"seed": 0, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 1, "lr_decay_epoch": None,
            "batch_size": 8, "model": ARCH, "clean_fraction": 0.5, "divergence_guard": False}
VANILLA = {"method": "vanilla", "kind": "vanilla", **SCHEDULE}
# A snapshot after every step and a fresh generator after the epoch's 2 steps: the replay part and
# a re-initialisation both run under two processes.
ANT = {"method": "ant", "kind": "ant", "eps": 20.0, "generator_lr": 1e-3, "reinit_every": 1.0, "reinit_steps": 1,
       "reinit_lr": None, "reinit_optimizer": "new", "snapshot_every": 1, "bank_size": 1000, "replay": True, "depth": 1,
       "kernel": "1x1", **SCHEDULE}


# -- the launchers' environments -------------------------------------------------------------

TORCHRUN = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
SRUN = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NNODES": "1", "SLURM_JOB_ID": "4242"}


def test_no_launcher_is_one_plain_process():
    assert world_from_env({}) == World() == distributed.SINGLE
    assert world_from_env({**TORCHRUN, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}).size == 1
    assert world_from_env({**SRUN, "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0"}) == World()


def test_torchrun_world_uses_its_store():
    assert world_from_env(TORCHRUN) == World(1, 2, 1, "env://")
    assert world_from_env({**SRUN, **TORCHRUN}).init_method == "env://"  # torchrun inside a slurm job


def test_srun_world_on_one_node_derives_the_address_from_the_job():
    assert world_from_env(SRUN) == World(3, 4, 1, f"tcp://127.0.0.1:{15000 + 4242}")
    given = world_from_env({**SRUN, "SLURM_NNODES": "2", "MASTER_ADDR": "node01", "MASTER_PORT": "29400"})
    assert given.init_method == "tcp://node01:29400"


@pytest.mark.parametrize(("env", "match"), [
    ({k: v for k, v in TORCHRUN.items() if k != "LOCAL_RANK"}, "LOCAL_RANK not set"),
    ({k: v for k, v in TORCHRUN.items() if k != "MASTER_ADDR"}, "MASTER_ADDR not set while WORLD_SIZE=2"),
    ({**TORCHRUN, "RANK": "2"}, "need 0 <= RANK < WORLD_SIZE"),
    ({**TORCHRUN, "WORLD_SIZE": "two"}, "not all integers"),
    ({**SRUN, "SLURM_NNODES": "2"}, "several nodes but MASTER_ADDR is not set: export MASTER_ADDR=.*scontrol"),
    ({k: v for k, v in SRUN.items() if k != "SLURM_JOB_ID"}, "export MASTER_PORT="),
    ({**SRUN, "MASTER_PORT": "99999"}, "not a port number"),
])
def test_incomplete_launcher_environments_say_what_to_set(env, match):
    with pytest.raises(ConfigError, match=match):
        world_from_env(env)


def test_a_cpu_run_stays_on_the_cpu():
    assert distributed.device_for(World(1, 2, 1), torch.device("cpu")) == torch.device("cpu")


def test_each_process_draws_its_own_noise_but_starts_the_same_generators(tmp_path):
    assert stream_seed(3, Stream.NOISE) == 3002  # rank 0: a one-process run's streams
    assert stream_seed(3, Stream.NOISE, rank=1) not in {3002, stream_seed(3, Stream.NOISE, rank=2)}
    source = folder_source(sample_folder(tmp_path))
    steps = [AntStep(ANT, source, "cpu", 2, world=World(rank, 2)) for rank in (0, 1)]
    for a, b in zip(steps[0].generator.parameters(), steps[1].generator.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(steps[0].noise_rng.get_state(), steps[1].noise_rng.get_state())
    assert not torch.equal(steps[0].pick_rng.get_state(), steps[1].pick_rng.get_state())
    noise = [NoiseStep({**VANILLA, "kind": "gnt", "sigma": 0.1}, world=World(rank, 2)) for rank in (0, 1)]
    assert not torch.equal(noise[0].rng.get_state(), noise[1].rng.get_state())


def test_the_small_datasets_and_uneven_batches_are_refused_before_training(tiny_digits, tmp_path):
    spec = {**VANILLA, "model": "mlp"}
    with pytest.raises(ConfigError, match="small datasets train in one process"):
        trainer.fit(spec, ArraySource(tiny_digits), checkpoint_dir=tmp_path, world=World(0, 2))
    source = folder_source(sample_folder(tmp_path), world_size=2)
    with pytest.raises(ConfigError, match="9 images cannot be split evenly over 2"):
        trainer.fit({**VANILLA, "batch_size": 9}, source, model=nn.Linear(1, 1), init_id="x",
                    checkpoint_dir=tmp_path, world=World(0, 2))


def test_a_checkpoint_of_another_number_of_processes_is_not_resumed(tmp_path):
    source = folder_source(sample_folder(tmp_path))
    spec = {**VANILLA, "batch_size": 4}
    with pytest.raises(Preempted):
        trainer.fit(spec, source, model=small_classifier(), init_id="x", checkpoint_dir=tmp_path / "ckpt",
                    stop=StopAfter(1), log=lambda _: None)
    saved = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert saved["world_size"] == 1 and "ranks" not in saved
    torch.save({**saved, "world_size": 2}, tmp_path / "ckpt" / "last.pt")
    with pytest.raises(CheckpointError, match=r"written by 2 training process\(es\), this run has 1: rerun with 2"):
        trainer.fit(spec, source, model=small_classifier(), init_id="x", checkpoint_dir=tmp_path / "ckpt")


# -- two processes ---------------------------------------------------------------------------

def sample_folder(root):
    """16 training images of 2 classes (2 steps of 8), 2 val images, and the val list."""
    if not (root / "val_files.json").exists():
        make_sample_imagenet(root, classes=2, train_per_class=8, val_per_class=1, size=32)
        write_val_list(root / "val", None, 0, root / "val_files.json")
    return root


def folder_source(root, rank=0, world_size=1) -> FolderSource:
    listing = read_val_list(root / "val_files.json")
    return FolderSource(root / "train", root / "val", listing["files"], listing["classes"], 0, rank=rank,
                        world_size=world_size)


def small_classifier() -> nn.Module:
    """SqueezeNet at a seeded init, without dropout: its masks are each process's own draw."""
    model = load_classifier(ARCH, None, num_classes=2, seed=0)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


HANG_SECONDS = 120


def free_ports(n: int) -> list[int]:
    """``n`` different free ports on 127.0.0.1 (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def two_processes(worker, *args, groups: int = 1) -> None:
    """Run ``worker(rank, ports, *args)`` in two processes on 127.0.0.1, with a port for each of
    ``groups`` process groups (a group started again on a port may meet the last one's leftovers);
    a failure in either process raises here."""
    mp.spawn(worker, args=(free_ports(groups), *args), nprocs=2, join=True)


def _join(rank: int, port: int) -> World:
    # A process left waiting in a collective shows where, and ends, instead of hanging the tests.
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    torch.set_num_threads(1)
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's connections on the loopback only
    return World(rank, 2, rank, f"tcp://127.0.0.1:{port}")


def _vanilla_worker(rank, ports, root, out):
    world = _join(rank, ports[0])
    with distributed.joined(world, torch.device("cpu")):
        state = trainer.fit(VANILLA, folder_source(root, rank, 2), model=small_classifier(), init_id="x",
                            checkpoint_dir=out / "ckpt", divergence_guard=False, log=lambda _: None, world=world)
        torch.save({"model": distributed.unwrap(state.model).state_dict(), "log": state.log}, out / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return sample_folder(tmp_path_factory.mktemp("images"))


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one_on_the_whole_batch(folder, tmp_path):
    two_processes(_vanilla_worker, folder, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    alone = trainer.fit(VANILLA, folder_source(folder), model=small_classifier(), init_id="x",
                        checkpoint_dir=tmp_path / "alone", divergence_guard=False, log=lambda _: None)
    for key, value in alone.model.state_dict().items():
        assert torch.equal(ranks[0]["model"][key], ranks[1]["model"][key]), key  # DDP keeps the processes alike
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert ranks[0]["model"].keys() == alone.model.state_dict().keys()
    # The log's metrics are the means over both processes: the whole batch's.
    for column in ("loss", "accuracy", "heldout_accuracy"):
        assert ranks[0]["log"][0][column] == pytest.approx(alone.log[0][column], rel=1e-5)
    saved = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert saved["world_size"] == 2 and len(saved["ranks"]) == 2 and saved["step"] == 0 and saved["epoch"] == 1
    assert (tmp_path / "ckpt" / trainer.STEP_LOG).read_text().count("\n") == 1 + 2  # rank 0's rows only


def _ant_worker(rank, ports, root, out):
    _join(rank, ports[0])
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1"})
    runs = (("whole", None), ("stopped", StopAfter(1) if rank == 1 else None), ("stopped", None))
    for port, (run, stop) in zip(ports, runs):
        os.environ["MASTER_PORT"] = str(port)  # as torchrun starts each job
        files = {name: out / run / name for name in ("model.pt", "log.csv", "steps.csv")}
        try:
            state = train_on_folder(ANT, train_dir=root / "train", val_dir=root / "val",
                                    val_files=root / "val_files.json", weights="random", device="cpu",
                                    checkpoint_dir=out / run / "ckpt", out=files["model.pt"], log_csv=files["log.csv"],
                                    steps_csv=files["steps.csv"], stop=stop, log=lambda _: None)
        except Preempted as exc:
            # Both stop at rank 1's request, once the checkpoint is written.
            assert "another process's stop request" in str(exc) if rank == 0 else "SIGTERM" in str(exc)
            assert (out / run / "ckpt" / "last.pt").exists()
            continue
        torch.save({"generator": cpu_state(state.method.generator), "bank": state.method.bank.states,
                    "reinits": state.method.reinits, "classifier": distributed.unwrap(state.model).state_dict()},
                   out / f"{run}_rank{rank}.pt")


@pytest.mark.slow
def test_ant_keeps_one_generator_on_both_processes_and_resumes_exactly(folder, tmp_path):
    two_processes(_ant_worker, folder, tmp_path, groups=3)
    runs = {(run, rank): torch.load(tmp_path / f"{run}_rank{rank}.pt", weights_only=True)
            for run in ("whole", "stopped") for rank in (0, 1)}
    reference = runs[("whole", 0)]
    assert reference["reinits"] == 2 and len(reference["bank"]) == 2  # the first generator and one more
    for (run, rank), result in runs.items():
        for part in ("generator", "classifier"):
            for key, value in reference[part].items():
                assert torch.equal(result[part][key], value), (run, rank, part, key)
        for state, expected in zip(result["bank"], reference["bank"]):
            assert all(torch.equal(state[key], expected[key]) for key in expected), (run, rank)
    payload = read_model_file(tmp_path / "stopped" / "model.pt")
    assert not any(key.startswith("module.") for key in payload["state_dict"])
    model, _ = load_model(tmp_path / "stopped" / "model.pt")
    assert all(torch.equal(model.state_dict()[key], value) for key, value in reference["classifier"].items())
    assert not (tmp_path / "stopped" / "ckpt").exists()
