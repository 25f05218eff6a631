"""The study a validated config describes, as the workflow asks about it: its results folder, the
models it trains, evaluates and measures, the image sets they are evaluated on, and the tables and
figures it writes. One study object serves every dataset kind (arrays: digits, MNIST; image
folders: ImageNet and its sample set); the rules ask it and only wire.

Standard library only (no torch, pandas or matplotlib): Snakemake builds it with the job graph.
"""

from __future__ import annotations

import json
from functools import cached_property, partial

from noisetrain import job_sizes
from noisetrain.config import (
    evaluation_models,
    expand_methods,
    image_root,
    imagenet_c_corruptions,
    init_method,
    initial_weights,
    looks_like_file,
    robustness_models,
    train_spec,
    trained_methods,
)
from noisetrain.config_names import BEST_GNT, dataset_kind, replicate_name, study_name
from noisetrain.methods import kind_of, label
from noisetrain.report.outputs import IMAGENET_C_TABLES, ROBUSTNESS_TABLES, TABLE_NAMES
from noisetrain.report.sweep_choice import sweep_sigmas

# Which tables each report job writes, by data form (image folders or not): one job per input (the
# arrays' records; the image folders' accuracy table, their robustness records), every paper table
# laid out by the one builder (report.paper_tables.spec_table).
TABLE_BUILDERS = {
    False: {"records": TABLE_NAMES, "claims": ("claims",)},
    True: {"imagenet_c": IMAGENET_C_TABLES, "robustness": ROBUSTNESS_TABLES[True]},
}
EPSILON_FIGURES = ("fig3_gaussian_eps_examples", "fig8_eps_examples")
# Where a choice record lies, by the eps it gives: 'auto' (the sigma sweep's) or 'search'.
CHOICE_FILES = {"auto": "selection/sweep_choice.json", "search": "selection/eps_search.json"}
CLEAN_SET = ("clean", "0")  # the (corruption, severity) of the clean test set
class Study:
    """Names, paths and lists of one study; paths are relative to the working directory."""

    def __init__(self, config: dict):
        self.config = config
        self.name = study_name(config)
        self.prefix = f"results/{self.name}"
        self.kind = dataset_kind(config)
        self.image_folders = self.kind.image_folders
        self.methods = expand_methods(config)  # every model trained (the best GNT model's replicates aside)
        self.method_names = expand_methods(config, every_replicate=True)  # every name a model file may have
        self.corruptions = list(config["corruptions"]["names"])  # the arrays' test corruptions
        self.sweep = list(sweep_sigmas(self.methods))
        self.eps_candidates = {m: spec["eps"] for m, spec in self.methods.items() if "candidate_of" in spec}
        self.extra_seeds = [seed for seed in config["seeds"]["values"] if seed != config["seed"]]

    def path(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"

    # -----------------------------------------------------------------------------------------
    # Models

    @cached_property
    def searched(self) -> list[str]:
        """The methods the eps search serves, where their eps is the search's own (no factor): their
        model is the winning candidate's, the same training bit for bit, not a second run of it."""
        served = {spec["candidate_of"] for spec in self.methods.values() if "candidate_of" in spec}
        return [m for m in served if self.methods[m]["eps"] == "search" and self.methods[m].get("eps_factor", 1.0) == 1.0]

    @cached_property
    def trained(self) -> dict[str, dict]:
        """Every model a train job may write, by name: on image folders the fine-tuned ones (the
        vanilla model is loaded), on arrays every method and replicate."""
        return trained_methods(self.config) if self.image_folders else self.method_names

    @cached_property
    def eval_models(self) -> dict[str, dict]:
        """Image folders: every model the evaluation runs (the study's and the external ones), each
        with how to build it and how to show it."""
        return evaluation_models(self.config) if self.image_folders else {}

    def evaluated(self) -> list[str]:
        """The models the prediction jobs may run (a wildcard's values)."""
        return list(self.eval_models) if self.image_folders else list(self.method_names)

    @property
    def chooses_best_gnt(self) -> bool:
        """Arrays with a sigma sweep choose its best GNT model (a checkpoint job); ImageNet's sweep
        is Fig 2's alone."""
        return bool(self.sweep) and not self.image_folders

    def best_replicates(self, best: str | None) -> list[str]:
        """The seed replicates of the sweep's best model (``best``), when seeds.methods lists best_gnt."""
        if not (best and self.extra_seeds and BEST_GNT in self.config["seeds"]["methods"]):
            return []
        return [replicate_name(best, seed) for seed in self.extra_seeds]

    def measured(self, best: str | None = None) -> list[str]:
        """Models whose robustness is measured (robustness.methods, 'all': every model). On arrays
        always the sweep's best GNT model too (Tables 2, 3, 5 and Figs 3, 8 show it), each once."""
        if self.image_folders:
            return robustness_models(self.config)
        named = self.config["robustness"]["methods"]
        named = list(self.methods) if named == "all" else list(named)
        if self.chooses_best_gnt and BEST_GNT not in named:
            named.append(BEST_GNT)
        return list(dict.fromkeys(best if m == BEST_GNT else m for m in named))

    def epsilon_example_models(self, best: str | None = None) -> list[str]:
        """Rows of Figs 3 and 8: every measured model on image folders; on arrays vanilla, the
        sweep's best GNT model and ANT 1x1 (those measured)."""
        measured = self.measured(best)
        if self.image_folders:
            return measured
        return [m for m in ("vanilla", best, "ant1x1") if m in measured]

    def label(self, model: str) -> str:
        """A model's name in tables and figures, the same everywhere (e.g. 'GNT σ=0.5 (resnet18)')."""
        if self.image_folders:
            return self.eval_models[model]["label"]
        return label(self.method_names[model])

    def generator_methods(self, **criteria) -> list[str]:
        """Methods that learn noise generators (ANT) whose spec matches every criterion, e.g. kernel='3x3'."""
        return [m for m, s in self.methods.items()
                if kind_of(s).learns_noise and all(s.get(k) == v for k, v in criteria.items())]

    def model_file(self, model: str) -> list[str]:
        """A model's checkpoint as an input (none for torchvision weights by name or a random init):
        a replaced or retrained model reruns what depends on it, and only that."""
        if not self.image_folders:
            return [self.path(f"models/{model}.pt")]
        weights = self.eval_models[model]["weights"]
        return [weights] if looks_like_file(weights) else []

    def model_spec(self, model: str) -> str:
        """How to build an image-folder model, as JSON (its label and paper row do not change its numbers)."""
        spec = self.eval_models[model]
        keys = ("architecture", "weights", "fine_tuned_from")
        return json.dumps({key: spec[key] for key in keys if key in spec}, sort_keys=True)

    def choice_file(self, eps: str) -> str | None:
        """The choice record an eps of 'auto' or 'search' comes from (None for a number)."""
        return self.path(CHOICE_FILES[eps]) if eps in CHOICE_FILES else None

    def init_file(self, method: str) -> str | None:
        """The checkpoint a method starts from: on arrays the vanilla model of its seed (None from
        scratch); on image folders its initial weights when they are a file."""
        if self.image_folders:
            weights = initial_weights(self.config, method)
            return weights if looks_like_file(weights) else None
        init = init_method(self.method_names[method])
        return self.path(f"models/{init}.pt") if init else None

    # -----------------------------------------------------------------------------------------
    # Data

    @property
    def sample(self) -> dict | None:
        return self.config["dataset"].get("sample") if self.image_folders else None

    @cached_property
    def image_root(self) -> str | None:
        return image_root(self.config) if self.image_folders else None

    @property
    def val_dir(self) -> str | None:
        return f"{self.image_root}/val" if self.image_folders else None

    @property
    def train_dir(self) -> str | None:
        return f"{self.image_root}/train" if self.image_folders else None

    def robustness_data(self) -> str:
        """The arrays the robustness measurement and the example figures read."""
        return self.path("data/robustness.npz" if self.image_folders else "data/clean.npz")

    @cached_property
    def in_c_corruptions(self) -> list[str]:
        return imagenet_c_corruptions(self.config) if self.image_folders else []

    @property
    def severities(self) -> list[str]:
        return [str(s) for s in self.config["imagenet_c"]["severities"]]

    def image_sets(self) -> list[tuple[str, str]]:
        """Every image set an image-folder model is evaluated on: (corruption, severity), clean first."""
        return [CLEAN_SET] + [(c, s) for c in self.in_c_corruptions for s in self.severities]

    def corrupted_source(self, corruption: str, severity: str) -> str:
        """The folder of one ImageNet-C corruption x severity: published, or generated by the study."""
        root = self.config["imagenet_c"]["root"]
        return f"{root}/{corruption}/{severity}" if root else self.path(f"data/imagenet_c/{corruption}/{severity}")

    def set_source(self, corruption: str, severity: str) -> str:
        return self.val_dir if (corruption, severity) == CLEAN_SET else self.corrupted_source(corruption, severity)

    # -----------------------------------------------------------------------------------------
    # Tables and figures

    def tables(self) -> list[str]:
        return [name for names in TABLE_BUILDERS[self.image_folders].values() for name in names]

    def tables_of(self, builder: str) -> list[str]:
        """The tables one builder writes in this study (none: the builder serves the other data form)."""
        return list(TABLE_BUILDERS[self.image_folders].get(builder, ()))

    def accuracy_figures(self) -> list[str]:
        """Image folders: the figures drawn from the accuracy table (Fig 2 where GNT models are
        evaluated, Fig 9 where JPEG compression is)."""
        names = ["fig5_accuracy_per_severity"]
        if any(spec.get("sigmas") for spec in self.eval_models.values()):
            names.insert(0, "fig2_accuracy_vs_sigma")
        if "jpeg_compression" in self.in_c_corruptions:
            names.append("fig9_jpeg_vs_posterize")
        return names

    def figures(self) -> list[str]:
        if self.image_folders:
            return [*self.accuracy_figures(), "fig7_noise_levels", *EPSILON_FIGURES]
        names = ["corruption_examples"]
        if self.sweep:
            names += ["fig6_accuracy_vs_sigma", "fig7_noise_levels", *EPSILON_FIGURES]
        if "ant1x1" in self.methods:
            names += ["fig4_adversarial_noise"]
        return names

    @staticmethod
    def figure_caption(name: str) -> str:
        """The report caption of a figure: report/<this>.rst (fig3_gaussian_eps_examples -> fig3)."""
        return "corruptions" if name == "corruption_examples" else name.split("_")[0]

    def noise_levels(self) -> list[float]:
        """Fig 7's sigmas: report.noise_levels, else the sigma sweep's."""
        return self.config["report"]["noise_levels"] or self.config["sigma_sweep"]

    def jpeg_dir(self) -> str:
        """Fig 9's ImageNet-C JPEG image comes from the strongest severity evaluated ('' without Fig 9)."""
        if "fig9_jpeg_vs_posterize" not in self.accuracy_figures():
            return ""
        return self.corrupted_source("jpeg_compression", max(self.severities, key=int))

    def targets(self) -> list[str]:
        """Every table (.md, .tex, .html) and figure (.png, .pdf) the study writes."""
        tables = [self.path(f"tables/{name}.{ext}") for name in self.tables() for ext in ("md", "tex", "html")]
        figures = [self.path(f"figures/{name}.{ext}") for name in self.figures() for ext in ("png", "pdf")]
        return tables + figures

    # -----------------------------------------------------------------------------------------
    # Jobs

    @property
    def train_processes(self) -> int:
        """Processes (one per GPU) of a train job: image folders train data-parallel over
        train.gpus_per_job GPUs; the arrays' trainer is one process."""
        return self.config["train"]["gpus_per_job"] if self.image_folders else 1

    def launcher(self) -> str:
        """python for one process; torchrun's single-node launcher, one process per GPU, for several."""
        if self.train_processes == 1:
            return "python"
        return f"torchrun --standalone --nproc_per_node {self.train_processes}"

    def job_threads(self, job: str) -> int:
        """Threads of a model job ('train', 'predict', 'robustness'): on image folders one per
        DataLoader process of each GPU's process, on arrays train.threads."""
        if not self.image_folders:
            return self.config["train"]["threads"]
        workers = self.config["train" if job == "train" else "evaluation"]["workers"]
        return max(1, workers) * (self.train_processes if job == "train" else 1)

    def job_resources(self, job: str, model: str | None = None) -> dict:
        """Slurm's memory, time (minutes), GPUs and partition of one model job: 'train' (of ``model``),
        'predict' or 'robustness', projected from the config (noisetrain.job_sizes)."""
        cpu_minutes = self._job_minutes(job, model, gpu=False)
        gpu = job_sizes.wants_gpu(self.config["device"], self.image_folders, cpu_minutes)
        gpus = (self.train_processes if job == "train" else 1) if gpu else 0
        return job_sizes.resources(self.config, job, self.image_folders, self._job_minutes(job, model, gpu), gpus)

    def train_resources(self) -> dict:
        """The train rule's resources, each a function of the job's method (its epochs and step cost)."""
        return {key: partial(self._train_resource, key) for key in self.job_resources("train", next(iter(self.trained)))}

    def _train_resource(self, key: str, wildcards, attempt: int) -> int | str:
        """One resource of a train job; a resubmitted job (attempt 2: killed at its time limit, it
        resumes from its checkpoint) asks for twice the time, within cluster.max_runtime_h."""
        value = self.job_resources("train", wildcards.method)[key]
        if key == "runtime":
            value = min(value * attempt, round(60 * self.config["cluster"]["max_runtime_h"]))
        return value

    def _job_minutes(self, job: str, model: str | None, gpu: bool) -> float:
        if job == "train":
            processes = self.train_processes if gpu else 1
            return job_sizes.train_minutes(self.config, train_spec(self.config, model), self.image_folders, gpu, processes)
        if job == "predict":
            return job_sizes.predict_minutes(self.evaluated_images(), self.image_folders, gpu)
        return job_sizes.robustness_minutes(self.config, self.image_folders, gpu)

    def evaluated_images(self) -> int:
        """Images one prediction job runs a model on: the clean test set and every corrupted set."""
        if self.image_folders:
            sample = self.sample
            val = sample["classes"] * sample["val_per_class"] if sample else job_sizes.IMAGENET_VAL_IMAGES
            val = min(val, self.config["imagenet_c"]["images"] or val)
            return val * len(self.image_sets())
        return job_sizes.test_images(self.config) * (1 + len(self.corruptions))
