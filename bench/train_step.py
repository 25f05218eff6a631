#!/usr/bin/env python
"""Throughput of one training step per method on the Madry CNN (batch 300, CPU), as a ratio to
the vanilla step on the same machine. Targets: every noise method (GNT, GNT_mult, Speckle) costs
at most 1.05x the vanilla step (issue 2); an ANT step at most 2.1x (issue 3; the floor is 2.0x,
one extra classifier forward and backward for the generator step).

    python bench/train_step.py [--steps 10] [--rounds 5] [--threads 2] [--adversarial]

--adversarial adds Table 11's adversarially trained baselines (pgd_at: 40 PGD steps a batch,
ddn_at: 100 DDN steps), timed over --adversarial-steps steps a round, and the wall time their
config/mnist.yaml schedule would take at the measured speed (they train from scratch with the
vanilla schedule). Their "foolbox" rows time the same steps with the attack run through foolbox
3 as training did before issue 21 (a PyTorchModel wrapper a batch, torch's global generator seeded
in a forked RNG state); the speed-up lines divide the two.

Each method runs through the trainer's own method step (built by noisetrain.train.steps.build_step
from config/mnist.yaml's validated specs), so what is timed is what training runs. ANT's periodic re-initialisation
is switched off here and reported separately, per step, at the given schedule. Two reference
rows isolate where time goes: "noisy batch" is a vanilla step on an all-noisy batch (the network
itself may run at another speed on noisy images), "ant floor" is an ANT step's two classifier
passes alone (input gradient on the generator's batch, then the classifier step) with no
generator, rescaling or batch composition, so ant1x1 minus ant floor is ANT's own overhead.
All rows are interleaved round by round so that drift in machine load hits them alike; each
row's time is the median over rounds. Images are real MNIST when NOISETRAIN_MNIST_ROOT (or
../shared/data) holds it, else the embedded digits.

On MNIST the 3x3 generator cannot reach 2.1x: its 3x3 layer alone is 3,600 multiply-adds per
pixel against the Madry CNN's ~17,700 (a 1x1 generator: 840), so it adds ~0.2 of a classifier
step even at the classifier's efficiency. On ImageNet's ResNet50 (~82,000 per pixel) it is ~5%.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from noisetrain.config import load_config, train_spec  # noqa: E402
from noisetrain.data import datasets  # noqa: E402
from noisetrain.errors import DataError  # noqa: E402
from noisetrain.models import madry_cnn  # noqa: E402,F401  (registers the network timed)
from noisetrain.models.architectures import build_model  # noqa: E402
from noisetrain.noise import pixel_noise as noise  # noqa: E402
from noisetrain.noise.adversarial_noise import frozen, weights_fixed  # noqa: E402
from noisetrain.noise.rescaling import rescale_to_norm  # noqa: E402
from noisetrain.train.adversarial_training import AdversarialStep  # noqa: E402
from noisetrain.train.ant import AntStep  # noqa: E402
from noisetrain.train.steps import build_step, classifier_step  # noqa: E402

# The methods timed, by their names in config/mnist.yaml (gnt: the sweep's sigma 0.5 point); the
# specs are the validated config's own, so the bench times what that config trains.
METHODS = {"vanilla": "vanilla", "gnt": "gnt_s0.5", "gnt_mult": "gnt_mult", "speckle": "speckle",
           "ant1x1": "ant1x1", "ant3x3": "ant3x3"}
ADVERSARIAL = {"pgd_at": "pgd_at", "ddn_at": "ddn_at"}
# Re-initialisation is timed on its own (below), not inside the steps.
NO_REINIT = {"reinit_every": 1e9, "reinit_steps": 0, "snapshot_every": 5}


def mnist_config(batch_size: int) -> dict:
    return load_config(ROOT / "config" / "mnist.yaml", {"train": {"batch_size": batch_size}, "sigma_sweep": [0.5]})


def method_specs(batch_size: int, adversarial: bool) -> dict[str, dict]:
    config = mnist_config(batch_size)
    methods = {**METHODS, **ADVERSARIAL} if adversarial else METHODS
    specs = {name: train_spec(config, method) for name, method in methods.items()}
    return {name: {**spec, **NO_REINIT} if spec["kind"] == "ant" else spec for name, spec in specs.items()}


def load_images(images: int) -> datasets.PreparedData:
    """``images`` training images of real MNIST where it is on disk, else the embedded digits."""
    root = datasets.local_mnist_root()
    try:
        data = datasets.prepare({"name": "mnist", "root": root, "download": False, "seed": 0, "subset_train": images})
        print(f"images: MNIST from {root}")
    except DataError:
        data = datasets.prepare({"name": "digits", "test_fraction": 0.3, "seed": 0})
        print("images: embedded digits")
    return data


def make_step(spec: dict, data, batch_size: int):
    return build_step(spec, data, torch.device("cpu"), steps_per_epoch=len(data.train.labels) // batch_size)


class _DrawOnly:
    """Only the noise part of a method step: composing the clean/noisy batch."""

    def __init__(self, step):
        self.inner = step

    def step(self, model, optimizer, x, y, index):
        return float(noise.mix_batch(x, self.inner.noise, self.inner.clean_fraction, self.inner.rng).sum())


class _FixedBatch:
    """A plain classifier step on a fixed (noisy) batch, to time the network on noisy input."""

    def __init__(self, batch):
        self.batch = batch

    def step(self, model, optimizer, x, y, index):
        return classifier_step(model, optimizer, self.batch, y)


class _AntClassifierPasses:
    """An ANT step's two classifier passes and nothing else, on fixed batches made once by the
    ANT step: the input gradient on an all-noisy batch (weights fixed), then the classifier step
    on a composed clean/current/replay batch."""

    def __init__(self, ant: AntStep, x: torch.Tensor, y: torch.Tensor):
        z = torch.randn(ant.generator.input_shape(x.shape))
        with torch.no_grad():
            self.noisy = rescale_to_norm(x, ant.generator.transform(z), ant.eps)
            self.batch, _ = ant.compose(x, y, torch.arange(len(x)))

    def step(self, model, optimizer, x, y, index):
        noisy = self.noisy.requires_grad_()
        with weights_fixed(model):
            torch.autograd.grad(F.cross_entropy(model(noisy), y), [noisy])
        return classifier_step(model, optimizer, self.batch, y)


class _FoolboxAdversarialStep(AdversarialStep):
    """The adversarial step with its attack through foolbox 3, as training ran it before issue 21;
    only the attack differs from the step timed as pgd_at / ddn_at."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        import foolbox as fb

        self.fb, self.epsilon = fb, spec["epsilon"]
        self.foolbox_attack = (fb.attacks.LinfPGD(steps=spec["steps"], abs_stepsize=spec["step_size"],
                                                  random_start=spec["random_start"])
                               if spec["kind"] == "pgd_at" else fb.attacks.DDNAttack(steps=spec["steps"], gamma=spec["gamma"]))

    def perturb(self, model, x, y):
        seed = int(torch.randint(2**62, (1,), generator=self.rng))
        with frozen(model), torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            fmodel = self.fb.PyTorchModel(model, bounds=(0.0, 1.0), device=self.device)
            criterion = self.fb.criteria.Misclassification(y)
            _, adversarial, fooled = self.foolbox_attack(fmodel, x, criterion, epsilons=self.epsilon)
        return adversarial.detach(), fooled


def is_adversarial(name: str) -> bool:
    return name.split()[0] in ADVERSARIAL


def time_steps(step, model, optimizer, x, y, steps: int, batch_size: int) -> float:
    start = time.perf_counter()
    for k in range(steps):
        index = torch.arange(k * batch_size, (k + 1) * batch_size) % len(x)
        step.step(model, optimizer, x[index], y[index], index)
    return (time.perf_counter() - start) / steps


def print_schedule_hours(seconds: dict[str, list[float]], specs: dict[str, dict], epoch_steps: int) -> None:
    """What each from-scratch model's config/mnist.yaml schedule costs at the measured step times
    (steps only: no held-out evaluation or data loading)."""
    for name in ("vanilla", *ADVERSARIAL):
        epochs = specs[name]["epochs"]
        hours = statistics.median(seconds[name]) * epoch_steps * epochs / 3600
        print(f"{name}: {epochs} epochs of {epoch_steps} steps (config/mnist.yaml) take about {hours:.1f} h here")


def print_speed_ups(seconds: dict[str, list[float]]) -> None:
    """The plain-torch attack's step against foolbox's in the loop, both in vanilla steps."""
    vanilla = statistics.median(seconds["vanilla"])
    for name in ADVERSARIAL:
        plain, old = (statistics.median(seconds[row]) / vanilla for row in (name, f"{name} foolbox"))
        print(f"{name}: {plain:.1f} vanilla steps a step with the plain-torch attack, {old:.1f} with foolbox's: "
              f"{old / plain:.2f}x as fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="steps per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--epoch-steps", type=int, default=200, help="steps per epoch for the re-init cost line (MNIST: 200)")
    parser.add_argument("--adversarial", action="store_true", help="also time pgd_at and ddn_at (minutes)")
    parser.add_argument("--adversarial-steps", type=int, default=2, help="pgd_at / ddn_at steps per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_images(args.batch_size * 4)
    x, y = datasets.to_float(data.train.images), torch.from_numpy(data.train.labels)
    model = build_model("madry_cnn")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    specs = method_specs(args.batch_size, args.adversarial)
    steps = {}
    for name, spec in specs.items():
        steps[name] = make_step(spec, data, args.batch_size)
        if name in ADVERSARIAL:  # next to the step it compares with: the same load drift hits both
            steps[f"{name} foolbox"] = _FoolboxAdversarialStep(spec)
    count = {name: args.adversarial_steps if is_adversarial(name) else args.steps for name in steps}
    batch_x, batch_y = x[: args.batch_size], y[: args.batch_size]
    for name, step in steps.items():  # warm-up; it also fills ANT's replay bank
        time_steps(step, model, optimizer, x, y, 1 if is_adversarial(name) else 6, args.batch_size)
    steps["gnt draw only"] = _DrawOnly(steps["gnt"])
    steps["noisy batch"] = _FixedBatch(steps["gnt"].noise(batch_x.clone(), torch.Generator().manual_seed(1)))
    steps["ant floor"] = _AntClassifierPasses(steps["ant1x1"], batch_x, batch_y)
    seconds = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            seconds[name].append(time_steps(step, model, optimizer, x, y, count.get(name, args.steps), args.batch_size))
    reference = statistics.median(seconds["vanilla"])
    counts = f" ({', '.join(ADVERSARIAL)}: {args.adversarial_steps})" if args.adversarial else ""
    print(f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds x {args.steps} steps{counts}, "
          f"torch {torch.__version__}")
    print(f"{'step':14s} {'images/s':>10s} {'ratio to vanilla':>18s}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:14s} {args.batch_size / median:10.0f} {median / reference:18.3f}")
    if args.adversarial:
        print_speed_ups(seconds)
        print_schedule_hours(seconds, specs, args.epoch_steps)

    # A fresh generator every reinit_every epochs, trained for reinit_steps steps: its cost per step.
    # The schedule is config/mnist.yaml's.
    schedule = load_config(ROOT / "config" / "mnist.yaml")["methods"]["ant1x1"]
    ant = steps["ant1x1"]
    ant.reinit_steps = schedule["reinit_steps"]
    start = time.perf_counter()
    ant.reinitialise(model)
    per_reinit = time.perf_counter() - start
    interval = max(1, round(schedule["reinit_every"] * args.epoch_steps))
    print(f"ANT re-initialisation (config/mnist.yaml): {per_reinit:.2f} s per fresh generator ({ant.reinit_steps} "
          f"steps); every {interval} steps that adds {per_reinit / interval / reference:.3f} vanilla steps per step")


if __name__ == "__main__":
    main()
