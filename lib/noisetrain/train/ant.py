"""Adversarial Noise Training (paper section 3.2.2, eq. 3; +SIN section 3.3; appendix B).

Per training batch the noise generator takes one Adam step to *raise* the classifier's loss on
the batch perturbed by it (the classifier held fixed), then the classifier takes one SGD step on
a composed batch: a clean part, optionally a stylized part, a part perturbed by the current
generator and a part perturbed by earlier generator states (experience replay). Every perturbation
has L2 size exactly ``eps`` after clipping (``rescale_to_norm``).

The generator's lifecycle follows the paper and, where it is silent, the authors' code
(bethgelab/game-of-noise):
- Before joint training starts, and then every ``reinit_every`` epochs, a fresh generator is
  trained "from scratch ... against the current state of the classifier to find a current optimum"
  and replaces the current one (the paper calls this crucial against a generator stuck in a local
  minimum). It trains ``reinit_steps`` Adam steps at ``reinit_lr`` with a new Adam (the authors:
  1,001 steps at 5e-4), then joins the joint training at ``generator_lr`` with a new Adam
  (``reinit_optimizer: new``) or with the moments of its own training (``kept``).
- The classifier's "current" part is drawn from the generator *after* its update, with fresh z
  (the authors' order; the paper's "current state of the noise generator").
- Replay draws from a bounded, uniform sample of all saved states (``noisetrain.train.replay_bank``).

Every step reports the generator's metrics for the training log: its cross-entropy and fooling
rate, the fooling rate the current generator had when it joined (``joining_fooling_rate``: a fresh
generator that is trained too briefly shows here), and what the noise does to the images
(``noisetrain.noise.diagnostics``): the fraction of its samples that are erased or saturated and
their mean noise value, for the current generator's samples and for the replay part of the batch.

:class:`AntStep` implements the method-step protocol (``noisetrain.train.steps``). All
randomness comes from seeded ``torch.Generator`` objects whose states are checkpointed (the
generator input z on the step's device, the rest on the CPU), so a CPU run is deterministic and
resumes bit for bit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from noisetrain.errors import InputError, TrainingError
from noisetrain.noise.adversarial_noise import weights_fixed
from noisetrain.noise.diagnostics import diagnostic_tensors
from noisetrain.noise.generator_bank import GeneratorBank, cpu_state
from noisetrain.noise.generators import NoiseGenerator
from noisetrain.noise.rescaling import rescale_to_norm
from noisetrain.threads import one_thread
from noisetrain.train.distributed import SINGLE, World, unwrap
from noisetrain.train.precision import FP32, Precision
from noisetrain.train.replay_bank import ReplayBank
from noisetrain.train.sources import as_source, to_device
from noisetrain.train.steps import Metrics, Stream, classifier_step, seeded

PARTS = ("clean", "stylized", "current", "replay")
FRACTION_TOLERANCE = 1e-6


def default_fractions(replay: bool, stylized: bool) -> dict[str, float]:
    """The paper's batch split: 50% clean, 30% current, 20% replay (section 3.2.2); +SIN: 25%
    clean, 30% stylized, 45% noise split evenly between current and replay (section 3.3)."""
    if stylized:
        noisy = {"current": 0.225, "replay": 0.225} if replay else {"current": 0.45, "replay": 0.0}
        return {"clean": 0.25, "stylized": 0.3, **noisy}
    if replay:
        return {"clean": 0.5, "stylized": 0.0, "current": 0.3, "replay": 0.2}
    return {"clean": 0.5, "stylized": 0.0, "current": 0.5, "replay": 0.0}


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps <= 0:
        raise InputError(f"ANT eps must be a positive number (resolve 'auto' before training), got {eps!r}")
    return float(eps)


def check_fractions(fractions: dict | None, *, replay: bool, stylized_path: str | None) -> dict[str, float]:
    """Validate a batch split (or take the paper's default) and return it with all four keys."""
    if fractions is None:
        return default_fractions(replay, stylized_path is not None)
    if not isinstance(fractions, dict) or set(fractions) != set(PARTS):
        raise InputError(f"ANT fractions must be a mapping with exactly the keys {list(PARTS)}, got {fractions!r}")
    out = {}
    for name in PARTS:
        value = fractions[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise InputError(f"ANT fractions.{name} must be a number, got {value!r}")
        if value < 0:
            raise InputError(f"ANT fractions.{name} must be >= 0, got {value}")
        out[name] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise InputError(f"ANT fractions must sum to 1, got {total:.8g} ({out})")
    if out["stylized"] > 0 and stylized_path is None:
        raise InputError("ANT fractions.stylized > 0 needs stylized_path (an .npz of stylized training images)")
    if out["replay"] > 0 and not replay:
        raise InputError("ANT fractions.replay > 0 needs replay: true (without it there is no bank to replay from)")
    return out


def part_counts(fractions: dict[str, float], n: int) -> dict[str, int]:
    """Images per part (in the order of ``fractions``) for a batch of ``n``: cumulative rounding,
    so the counts sum to ``n``."""
    counts, done, cum = {}, 0, 0.0
    names = list(fractions)
    for name in names:
        cum += fractions[name]
        # The last boundary is n exactly, whatever rounding left in the sum of the fractions.
        bound = n if name == names[-1] else min(n, int(math.floor(cum * n + 0.5)))
        counts[name] = bound - done
        done = bound
    return counts


def part_slices(fractions: dict[str, float], n: int) -> dict[str, slice]:
    """Each part's positions in a batch of ``n``: consecutive, in the order of ``fractions``."""
    slices, start = {}, 0
    for name, count in part_counts(fractions, n).items():
        slices[name] = slice(start, start + count)
        start += count
    return slices


class AntStep:
    """The ANT method step: one generator step, then one classifier step per batch.

    Counters ``steps`` (batches done) and ``reinits`` (fresh generators trained, the first one
    included) are public. The replay bank (``bank``) offers itself a CPU copy of the generator every
    ``snapshot_every`` steps and keeps at most ``bank_size`` of them.
    """

    def __init__(self, spec: dict, source, device: torch.device | str, steps_per_epoch: int,
                 precision: Precision = FP32, world: World = SINGLE):
        if steps_per_epoch < 1:
            raise InputError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.eps = check_eps(spec["eps"])
        self.replay = bool(spec["replay"])
        self.stylized_path = spec.get("stylized_path")
        self.fractions = check_fractions(spec.get("fractions"), replay=self.replay, stylized_path=self.stylized_path)
        # reinit_lr null (or absent, in a spec older than the key) is generator_lr.
        reinit_lr = spec["generator_lr"] if spec.get("reinit_lr") is None else spec["reinit_lr"]
        if (spec["reinit_every"] <= 0 or spec["reinit_steps"] < 0 or spec["snapshot_every"] < 1 or not reinit_lr > 0
                or spec["bank_size"] < 1):
            raise InputError("ANT needs reinit_every > 0, reinit_steps >= 0, snapshot_every >= 1, reinit_lr > 0 and "
                             "bank_size >= 1")
        if spec["reinit_optimizer"] not in ("new", "kept"):
            raise InputError(f"ANT reinit_optimizer must be 'new' or 'kept', got {spec['reinit_optimizer']!r}")
        self.device = torch.device(device)
        self.source = as_source(source, spec)
        self.precision = precision
        self.arch = {"channels": self.source.channels, "depth": spec["depth"], "kernel": spec["kernel"]}
        self.lr = spec["generator_lr"]  # joint training
        self.reinit_lr = float(reinit_lr)  # a fresh generator's own training
        self.batch_size = spec["batch_size"]
        self.reinit_interval = max(1, round(spec["reinit_every"] * steps_per_epoch))
        self.reinit_steps = spec["reinit_steps"]
        self.keep_reinit_adam = spec["reinit_optimizer"] == "kept"
        self.snapshot_every = spec["snapshot_every"]
        if self.fractions["stylized"] > 0 and not self.source.has_stylized:
            raise InputError("ANT's stylized part needs the stylized training images: give stylized_path")

        # Data-parallel: every process starts each fresh generator from the same init and steps it
        # with the gradients averaged over the processes, so all keep the same generator; each draws
        # its own z, replay picks and re-initialisation batches.
        self.world = world
        self.init_rng = seeded(spec["seed"], Stream.GENERATOR_INIT)
        # On a GPU, z is drawn there: a CPU draw and copy of a batch's z costs about as much as a step.
        self.noise_rng = seeded(spec["seed"], Stream.GENERATOR_NOISE, self.device, rank=world.rank)
        self.pick_rng = seeded(spec["seed"], Stream.PICK, rank=world.rank)
        self.generator, self.optimizer = self._fresh_generator(self.lr)  # replaced before the first step
        # One reservoir stream for every process: they all keep the same bank.
        self.bank = ReplayBank(spec["bank_size"], seeded(spec["seed"], Stream.BANK))
        self._bank_entries: dict[int, Callable | dict] = {}  # each bank state prepared for replay, by its step
        # Replay in one pass with every image's own weights (transform_each) on a GPU, where a call
        # per drawn state is a dozen kernel launches each (MNIST's 60 replay images draw ~50 states);
        # on the CPU one call per state, through the CPU's faster maps (piecewise, _PixelMLP).
        self.replay_each = self.device.type != "cpu"
        self.steps = 0
        self.reinits = 0
        self.joining = True  # the next step is the current generator's first joint step
        self.joining_fooling_rate = torch.tensor(float("nan"), device=self.device)
        self._finite = torch.tensor(True, device=self.device)  # every noise since the last check was finite
        self.last_replay_choice: torch.Tensor | None = None  # bank index per replay image (tests)

    # -- generator helpers -------------------------------------------------------------------
    def _fresh_generator(self, lr: float) -> tuple[NoiseGenerator, torch.optim.Adam]:
        # nn.Conv2d's constructor draws a default init from the global RNG before
        # NoiseGenerator redraws it from init_rng: fork so the global stream is left untouched.
        with torch.random.fork_rng(devices=[]):
            gen = NoiseGenerator(**self.arch, rng=self.init_rng).to(self.device)
        return gen, torch.optim.Adam(gen.parameters(), lr=lr)

    def _noise_input(self, gen: NoiseGenerator, shape: torch.Size) -> torch.Tensor:
        # Drawn on the step's device (its own seeded stream there; on the CPU, today's stream).
        return torch.randn(gen.input_shape(shape), generator=self.noise_rng, device=self.device)

    def _perturb(self, gen: NoiseGenerator, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = self._noise_input(gen, x.shape)
        delta = gen.transform(z).to(x.dtype)
        self._finite &= torch.isfinite(delta).all()
        if self.device.type == "cpu":
            self._check_finite()
        return rescale_to_norm(x, delta, self.eps)

    def _check_finite(self) -> None:
        """Stop on a diverged generator. On a GPU this reads the device, so it runs where the step
        waits for it anyway (a bank snapshot, a re-initialisation, a checkpoint): within
        snapshot_every steps; on the CPU after every generator pass."""
        if not bool(self._finite):
            rates = f"generator_lr (now {self.lr:g})"
            if self.reinit_lr != self.lr:
                rates += f" or reinit_lr (now {self.reinit_lr:g})"
            raise TrainingError(f"ANT: the noise generator diverged (non-finite noise by step {self.steps}, "
                                f"{self.reinits} re-initialisations); lower {rates}")

    def _generator_update(self, model: nn.Module, gen: NoiseGenerator, opt: torch.optim.Optimizer,
                          x: torch.Tensor, y: torch.Tensor,
                          diagnose: bool = True) -> dict[str, torch.Tensor]:
        """One Adam step of ``gen`` maximising the classifier's cross-entropy (eq. 2) on ``x``.

        The classifier is fixed and in eval mode (BatchNorm statistics must not learn from the
        generator's samples). With ``diagnose`` it returns the generator's metrics (else {}), as
        0-d tensors computed on the samples of this update: its cross-entropy, its fooling
        rate (the fraction of perturbed images misclassified), the fraction of its samples
        erased or saturated and their mean noise value (from the tensors the step has anyway).
        """
        # The plain module, not DDP's wrapper: this forward is no classifier update to synchronise.
        model = unwrap(model)
        was_training = model.training
        model.eval()
        with weights_fixed(model):
            noisy = self._perturb(gen, x)  # the generator and rescaling pick their own threads
            with self.precision.autocast():
                logits = model(self.precision.prepare_batch(noisy))
                loss = F.cross_entropy(logits, y)
            self.precision.step(-loss, opt, "generator", sync=self.world.average_gradients)
        model.train(was_training)
        if not diagnose:
            return {}
        with one_thread():
            diagnostics = diagnostic_tensors(x, noisy.detach(), logits, y)
        return {"generator_loss": loss.detach(), "fooling_rate": diagnostics.pop("fooling_rate"), **diagnostics}

    def reinitialise(self, model: nn.Module) -> None:
        """Train a fresh generator from scratch against the current classifier, ``reinit_steps``
        steps of a new Adam at ``reinit_lr``; it replaces the current one and goes on at
        ``generator_lr``, with a new Adam or (``reinit_optimizer: kept``) its training's moments."""
        gen, opt = self._fresh_generator(self.reinit_lr)
        for x, y in self.source.random_batches(self.reinit_steps, self.batch_size, self.pick_rng):
            self._generator_update(model, gen, opt, x.to(self.device), y.to(self.device), diagnose=False)
        self._check_finite()
        if self.keep_reinit_adam:
            for group in opt.param_groups:
                group["lr"] = self.lr
        else:
            opt = torch.optim.Adam(gen.parameters(), lr=self.lr)
        self.generator, self.optimizer = gen, opt
        self.reinits += 1
        self.joining = True

    def _snapshot(self) -> None:
        self._check_finite()
        displaced = self.bank.offer(self.steps, lambda: cpu_state(self.generator))
        self._bank_entries.pop(displaced, None)

    def _bank_entry(self, slot: int) -> Callable[[torch.Tensor], torch.Tensor] | dict[str, torch.Tensor]:
        """Bank state ``slot`` prepared for replay, once while it is in the bank (a bank state never
        changes): its weights on the step's device, or with ``replay_each`` off a ready map
        z -> delta (for a 1x1 MNIST generator on the CPU: its breakpoints)."""
        key = self.bank.taken_at[slot]
        if key not in self._bank_entries:
            params = {k: to_device(v, self.device) for k, v in self.bank.states[slot].items()}
            self._bank_entries[key] = params if self.replay_each else self.generator.as_function(params)
        return self._bank_entries[key]

    # -- batch composition -------------------------------------------------------------------
    @torch.no_grad()
    def compose(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, dict[str, slice]]:
        """The classifier's batch: ``x`` (moved to the device) with its parts replaced.

        Returns the batch and ``{part: slice}`` over its positions, in the order clean,
        stylized (the stylized versions of the same training indices), current (perturbed by
        the current generator with fresh z), replay (perturbed by bank states drawn per image).
        While the bank is empty the current generator also perturbs the replay part. Labels are
        unchanged; ``y`` is accepted to mirror the step protocol.
        """
        parts = part_slices(self.fractions, len(x))
        counts = {name: part.stop - part.start for name, part in parts.items()}
        batch = x.to(self.device, copy=True)

        sty = parts["stylized"]
        if counts["stylized"]:
            batch[sty] = self.source.stylized(index[sty]).to(self.device)

        use_bank = bool(self.bank) and counts["replay"] > 0
        own = parts["current"] if use_bank else slice(parts["current"].start, parts["replay"].stop)
        if own.stop > own.start:
            batch[own] = self._perturb(self.generator, batch[own])
        if not use_bank:
            return batch, parts

        rep = parts["replay"]
        target = batch[rep]
        z = self._noise_input(self.generator, target.shape)  # one draw, whatever the grouping
        choice = torch.randint(len(self.bank), (counts["replay"],), generator=self.pick_rng)
        replay = self._replay_each if self.replay_each else self._replay_by_state
        # One rescale for the whole replay part: it is per image anyway.
        batch[rep] = rescale_to_norm(target, replay(z, choice, target), self.eps)
        self.last_replay_choice = choice
        return batch, parts

    def _replay_by_state(self, z: torch.Tensor, choice: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The replay noise for ``target``, one call of each drawn bank state's prepared function on its rows."""
        delta = torch.empty_like(target)
        # The rows of each bank state in one copy to the device (one per state would each wait for it).
        grouped = to_device(torch.argsort(choice, stable=True), self.device)
        start = 0
        for state, size in enumerate(torch.bincount(choice, minlength=len(self.bank)).tolist()):
            rows = grouped[start : start + size]
            start += size
            if size:
                delta[rows] = self._bank_entry(state)(z[rows]).to(delta.dtype)
        return delta

    def _replay_each(self, z: torch.Tensor, choice: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The replay noise for ``target`` in one pass of every image under its own drawn state's weights."""
        drawn = [self._bank_entry(state) for state in choice.tolist()]
        weights = {key: torch.stack([params[key] for params in drawn]) for key in drawn[0]}
        return self.generator.transform_each(z, weights).to(target.dtype)

    # -- the step protocol -------------------------------------------------------------------
    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             index: torch.Tensor) -> Metrics:
        x, y = x.to(self.device), y.to(self.device)
        if self.reinits == 0:  # the first generator is trained before joint training starts
            self.reinitialise(model)
        # Eq. 3, alternating: the generator steps first; the classifier then trains on samples of
        # the updated generator with fresh z (the authors' order). Reusing the update's own samples
        # would save one generator pass but train the classifier one generator step behind, on
        # the very noise the generator's gradient was taken on.
        tensors = self._generator_update(model, self.generator, self.optimizer, x, y)
        if self.joining:  # measured on a batch it has not trained on, before its first joint update
            self.joining_fooling_rate, self.joining = tensors["fooling_rate"], False
        tensors["joining_fooling_rate"] = self.joining_fooling_rate
        batch, parts = self.compose(x, y, index)
        rep = parts["replay"]
        if rep.stop > rep.start:  # bank states (the current generator while the bank is empty)
            with one_thread():  # many mid-sized operations (see one_thread)
                replay = diagnostic_tensors(x[rep], batch[rep])
            tensors.update({f"replay_{key}": value for key, value in replay.items()})
        metrics = {key: value.float() for key, value in tensors.items()}  # the trainer reads them in batches (EpochSums)
        metrics.update(classifier_step(model, optimizer, batch, y, self.precision))
        self.steps += 1
        # Snapshot before a re-init so the bank keeps the jointly trained state.
        if self.replay and self.steps % self.snapshot_every == 0:
            self._snapshot()
        if self.steps % self.reinit_interval == 0:
            self.reinitialise(model)
        return metrics

    def state_dict(self) -> dict:
        self._check_finite()
        return {
            "generator": cpu_state(self.generator),
            "optimizer": self.optimizer.state_dict(),
            "bank": self.bank.state_dict(),
            "steps": self.steps,
            "reinits": self.reinits,
            "joining": self.joining,
            "joining_fooling_rate": float(self.joining_fooling_rate),
            "init_rng": self.init_rng.get_state(),
            "noise_rng": self.noise_rng.get_state(),
            "pick_rng": self.pick_rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.lr)
        self.optimizer.load_state_dict(state["optimizer"])
        self.bank.load_state_dict(state["bank"])
        self._bank_entries = {}
        self.steps = int(state["steps"])
        self.reinits = int(state["reinits"])
        self.joining = bool(state["joining"])
        self.joining_fooling_rate = torch.tensor(float(state["joining_fooling_rate"]), device=self.device)
        self.init_rng.set_state(state["init_rng"])
        self.noise_rng.set_state(state["noise_rng"])
        self.pick_rng.set_state(state["pick_rng"])

    def export(self) -> dict:
        """The replay bank followed by the final generator, for the model file (Fig 4)."""
        states = [dict(s) for s in self.bank.states] + [cpu_state(self.generator)]
        return {"generators": GeneratorBank(self.arch, self.eps, states).to_dict()}
