"""What a model job asks the cluster for, from the config: a GPU or not, its partition, its time and
its memory. Standard library only (Snakemake sizes every job while building the job graph).

The time asked for is a projection: the images a job processes (epochs x training images x the
method's step cost, or the images of every evaluated set) over a planning rate of its data form and
device, times a safety factor, capped at ``cluster.max_runtime_h`` (a longer training job is
resubmitted and resumes from its checkpoint: the profile's ``retries``). The rates are planning
figures, not measurements of any cluster: where a site's jobs need more, ``--set-resources
train:runtime=...`` (or the profile's ``set-resources``) overrides any of these.
"""

from __future__ import annotations

from noisetrain.methods import kind_of

# Images per second of one vanilla training step, by (image folders, GPU). Arrays: the Madry CNN on
# MNIST (bench/train_step.py measured 1,200-3,300 images/s on 2 CPU cores; no GPU was measured);
# image folders: ResNet50 fed by the streaming loader (decoding limits it to a few hundred images/s
# per GPU with 8 loader processes; ~15 images/s on a CPU).
TRAIN_RATE = {(False, False): 1_000, (False, True): 10_000, (True, False): 15, (True, True): 500}
PREDICT_SPEEDUP = 3  # inference is about three times a training step (no backward pass)
SAFETY = 3  # ask for three times the projection: a slow node or a shared GPU is not a failed job
MIN_MINUTES = 15
# Memory of a model job per process (MB), by data form: a small dataset fits in a few GB; ImageNet
# training holds the DataLoader workers' prefetched batches beside the model.
MEMORY_MB = {False: {"train": 4000, "predict": 4000, "robustness": 4000},
             True: {"train": 32000, "predict": 16000, "robustness": 16000}}
# Model evaluations per image of an eps* line search (bench/eps_search.py: at most 12 at rel_tol 1e-3).
SEARCH_PASSES = 12
GRADIENT_PASS = 3  # a forward and a backward pass cost about three forward passes (a backward about two)
# A job of the small datasets asks for a GPU under device 'auto' only when its CPU time would pass this.
GPU_WORTH_MINUTES = 60
IMAGENET_TRAIN_IMAGES = 1_281_167
IMAGENET_VAL_IMAGES = 50_000
MNIST_IMAGES = {"train": 60_000, "test": 10_000}
DIGITS_IMAGES = 1_797


def train_images(config: dict) -> int:
    """Training images of one epoch."""
    dataset = config["dataset"]
    if dataset["name"] == "imagenet":
        sample = dataset.get("sample")
        return sample["classes"] * sample["train_per_class"] if sample else IMAGENET_TRAIN_IMAGES
    return _array_images(dataset, "train")


def test_images(config: dict) -> int:
    """Test images of a small dataset (one corrupted set holds as many)."""
    return _array_images(config["dataset"], "test")


def _array_images(dataset: dict, split: str) -> int:
    if dataset["name"] == "mnist":
        full = MNIST_IMAGES[split]
    else:
        share = 1 - dataset["test_fraction"] if split == "train" else dataset["test_fraction"]
        full = round(DIGITS_IMAGES * share)
    return min(full, dataset.get(f"subset_{split}") or full)


def train_minutes(config: dict, spec: dict, image_folders: bool, gpu: bool, processes: int = 1) -> float:
    """Projected minutes of one training job (``spec``: its training spec), before the safety factor."""
    images = spec["epochs"] * train_images(config) * kind_of(spec).step_cost(spec)
    return images / (TRAIN_RATE[(image_folders, gpu)] * processes) / 60


def predict_minutes(images: int, image_folders: bool, gpu: bool) -> float:
    """Projected minutes of one prediction job over ``images`` images (every set of the study)."""
    return images / (PREDICT_SPEEDUP * TRAIN_RATE[(image_folders, gpu)]) / 60


def robustness_passes(config: dict) -> dict[str, int]:
    """Image passes of one robustness job: ``forward`` (eps* along GN, UN and each fresh AN generator,
    at most SEARCH_PASSES per image) and ``gradient`` (a forward and a backward to the input: the
    fresh generators' training steps and the two attacks' steps)."""
    noise, attacks = config["robustness"], config["attacks"]
    generators = noise["an_seeds"] * noise["an_steps"] * noise["an_batch_size"]
    attacked = attacks["images"] * (attacks["linf_pgd"]["steps"] + attacks["l2_ddn"]["steps"])
    return {"forward": noise["images"] * SEARCH_PASSES * (2 + noise["an_seeds"]), "gradient": generators + attacked}


def robustness_minutes(config: dict, image_folders: bool, gpu: bool) -> float:
    """Projected minutes of one robustness job, a gradient pass counted as three forward passes."""
    passes = robustness_passes(config)
    return (passes["forward"] + GRADIENT_PASS * passes["gradient"]) / TRAIN_RATE[(image_folders, gpu)] / 60


def wants_gpu(device: str, image_folders: bool, cpu_minutes: float) -> bool:
    """device 'cuda': always; 'cpu': never; 'auto': on image folders, and on arrays where the job's
    CPU time would pass GPU_WORTH_MINUTES (a digits model is a minute of work on a CPU)."""
    if device != "auto":
        return device == "cuda"
    return image_folders or cpu_minutes > GPU_WORTH_MINUTES


def resources(config: dict, job: str, image_folders: bool, minutes: float, gpus: int) -> dict:
    """Slurm resources of one model job: memory, time (minutes), GPUs, partition and CPUs per GPU."""
    cluster = config["cluster"]
    runtime = min(max(MIN_MINUTES, round(SAFETY * minutes)), round(60 * cluster["max_runtime_h"]))
    return {
        "mem_mb": MEMORY_MB[image_folders][job] * max(1, gpus),
        "runtime": runtime,
        "gpu": gpus,
        "slurm_partition": cluster["gpu_partition"] if gpus else cluster["cpu_partition"],
    }
