"""The whole study's GPU cost, projected from measured throughput (issue 21): GPU-hours per model
(training and evaluation) and the wall time on one GPU node under the slurm profile's packing.

The models, epochs and evaluation jobs are the pipeline's own (:class:`noisetrain.study.Study` on
the config); the rates are those ``bench/gpu_check.sh`` measured and wrote to ``gpu_check.json``.
Nothing here is a figure of its own: where a rate was not measured (another network, a batch mix,
DDP over several GPUs), the nearest measured row is used and the table's notes say so.

Standard library only (no torch): it runs wherever the config can be read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from noisetrain import job_sizes
from noisetrain.config import load_yaml_strict, train_spec
from noisetrain.errors import InputError
from noisetrain.methods import kind_of
from noisetrain.methods.ant import PAPER_DEPTH
from noisetrain.study import Study

HOW_TO_MEASURE = ("run `bash bench/gpu_check.sh --out DIR` on a GPU machine (docs/speed.md, 'The prepared GPU check') "
                  "and pass DIR/gpu_check.json")
TRAIN, INFERENCE, LOADER, DDP = "train_synthetic", "inference", "loader", "ddp"
FP32 = "fp32"
RULE_JOBS = {"predict_model": "predict", "measure_robustness": "robustness"}  # rule -> Study.job_resources' job


# ------------------------------------------------------------------------------------------------
# The measurements


@dataclass(frozen=True)
class Measured:
    """What one gpu_check.json measured, as images/s."""

    path: str
    where: str  # the card (or CPU), the network and the setting, as the check recorded them
    train: dict[str, float]  # train_synthetic: whole AMP training steps, by method row
    amp: str  # the precision the AMP steps ran in (bf16, fp16; fp32 on a CPU)
    inference: dict[str, float]  # forward passes, by precision
    loader_per_worker: float | None  # the streaming loader alone, per DataLoader process
    ddp: dict = field(default_factory=dict)
    example_only: bool = False  # not ResNet50 on a GPU: the arithmetic's example, not the study's cost


def _rows(section: dict) -> dict[str, float]:
    rows = section.get("results", {}).get("rows", {})
    return {name: row["images_per_s"] for name, row in rows.items() if row.get("images_per_s")}


def read_measured(path: str | Path) -> Measured:
    """The rates of a gpu_check.json (``bench/gpu_check.sh``)."""
    report = json.loads(Path(path).read_text())
    sections = report.get("sections", {})
    train = sections.get(TRAIN, {})
    results = train.get("results", {})
    card = sections.get("card", {}).get("results", {}).get("name") or report.get("device", "?")
    model, setting = results.get("model", "?"), report.get("setting", "?")
    loader = sections.get(LOADER, {}).get("results", {}).get("images_per_s_per_worker")
    return Measured(
        path=str(path), where=f"{card}, {model} at {results.get('image_size', '?')} px, setting {setting}",
        train=_rows(train), amp=results.get("precision", FP32), inference=_rows(sections.get(INFERENCE, {})),
        loader_per_worker=loader, ddp=sections.get(DDP, {}).get("results", {}),
        example_only=report.get("device") == "cpu" or model != "resnet50",
    )


def require(measured: Measured, train_rows: set[str], inference_rows: set[str]) -> None:
    """Every row the study's cost needs, or one error naming each missing section and row."""
    report = json.loads(Path(measured.path).read_text())
    missing = []
    for section, have, need in ((TRAIN, measured.train, train_rows), (INFERENCE, measured.inference, inference_rows)):
        lacking = sorted(need - set(have))
        if lacking:
            entry = report.get("sections", {}).get(section)
            state = "absent" if entry is None else f"status {entry.get('status')}: {entry.get('reason') or 'no rate'}"
            missing.append(f"section '{section}' rows {', '.join(lacking)} ({state})")
    if missing:
        raise InputError(f"{measured.path} lacks {'; '.join(missing)}; {HOW_TO_MEASURE}")


# ------------------------------------------------------------------------------------------------
# Which measured row prices a model, and what the row leaves out


def measured_row(spec: dict) -> str:
    """The gpu_check train row of a training spec: vanilla, gnt (every pixel-noise step), ant1x1, ant3x3."""
    kind = kind_of(spec)
    if kind.learns_noise:
        return f"ant{spec['kernel']}"
    if kind.name == "vanilla":
        return "vanilla"
    if kind.step == kind_of("gnt").step:
        return "gnt"
    raise InputError(f"no measured training step for method kind {kind.name!r}: gpu_check times vanilla, gnt, ant1x1, ant3x3")


def row_notes(spec: dict, network: str) -> list[str]:
    """What a model's training does that its measured row did not time."""
    kind, notes = kind_of(spec), []
    if kind.name not in ("vanilla", "gnt", "ant"):
        notes.append(f"{kind.name}: the pixel-noise step, timed as GNT σ=0.5's")
    if spec.get("stylized_path"):
        notes.append("+SIN: its batch mix (25 / 30 / 45 % clean / stylized / noise) and the stylized images' reads "
                     "are timed as the plain method's")
    if kind.learns_noise and spec["depth"] != PAPER_DEPTH:
        notes.append(f"generator depth {spec['depth']}, timed at depth {PAPER_DEPTH}")
    if kind.learns_noise and not spec["replay"]:
        notes.append("no replay, timed with it")
    if spec["model"] != network:
        notes.append(f"{spec['model']}, timed as {network}")
    return notes


# ------------------------------------------------------------------------------------------------
# GPU-hours per model


@dataclass
class ModelCost:
    name: str
    row: str | None  # the measured train row (None: not trained here)
    epochs: float
    images: int  # images trained
    train_rate: float | None  # images/s of one GPU, after the loader's ceiling
    limited_by: str
    train_h: float  # GPU-hours
    eval_h: float
    notes: list[str]

    @property
    def total_h(self) -> float:
        return self.train_h + self.eval_h


def loader_ceiling(measured: Measured, workers: int) -> float:
    """Images/s the job's DataLoader processes can decode (inf where the loader was not measured);
    workers 0 decode in the job's own process, as one."""
    return measured.loader_per_worker * max(1, workers) if measured.loader_per_worker else math.inf


def fed_rate(compute: float, measured: Measured, workers: int) -> tuple[float, str]:
    """A GPU's rate when its loader may not keep up: the lower of the two, and which it is."""
    ceiling = loader_ceiling(measured, workers)
    return (compute, "GPU") if compute <= ceiling else (ceiling, "loader")


def steps_per_epoch(study: Study) -> int:
    return max(1, job_sizes.train_images(study.config) // study.config["train"]["batch_size"])


def fresh_generator_seconds(study: Study, spec: dict, measured: Measured) -> float:
    """ANT's fresh generators (gpu_check times ANT without them): one before training and one every
    ``reinit_every`` epochs, ``reinit_steps`` generator updates of a whole batch each; an update is
    priced as the ANT step's excess over the vanilla step (its generator pass, the classifier's
    forward and backward to the input, the rescaling)."""
    steps = steps_per_epoch(study)
    interval = max(1, round(spec["reinit_every"] * steps))
    generators = 1 + int(spec["epochs"] * steps) // interval
    per_image = max(0.0, 1 / measured.train[measured_row(spec)] - 1 / measured.train["vanilla"])
    return generators * spec["reinit_steps"] * spec["batch_size"] * per_image


def ddp_efficiency(study: Study, measured: Measured) -> tuple[float, str | None]:
    """Throughput per GPU of a data-parallel train job against one GPU's: 1 for one GPU; measured
    where the check ran DDP over as many GPUs as a job gets; else assumed 1, and said so."""
    gpus = study.train_processes
    if gpus == 1:
        return 1.0, None
    if measured.ddp.get("processes") == gpus and measured.ddp.get("scaling_vs_single_process"):
        return measured.ddp["scaling_vs_single_process"], f"DDP over {gpus} GPUs: measured scaling"
    return 1.0, (f"DDP over {gpus} GPUs per train job: scaling not measured (gpu_check's ddp ran "
                 f"{measured.ddp.get('processes', 'no')} process(es)); assumed perfect")


def train_cost(study: Study, name: str, measured: Measured) -> ModelCost:
    spec = train_spec(study.config, name)
    row, train = measured_row(spec), study.config["train"]
    rate, limited_by = fed_rate(measured.train[row], measured, train["workers"])
    images = spec["epochs"] * job_sizes.train_images(study.config)
    seconds = images / rate + spec["epochs"] * train["heldout_images"] / measured.inference[amp_row(study, measured)]
    if kind_of(spec).learns_noise:
        seconds += fresh_generator_seconds(study, spec, measured)
    return ModelCost(name, row, spec["epochs"], images, rate, limited_by, seconds / 3600 / ddp_efficiency(study, measured)[0],
                     eval_hours(study, name, measured), row_notes(spec, study.config["model"]))


def amp_row(study: Study, measured: Measured) -> str:
    """The inference row of training's held-out check: training's precision."""
    return measured.amp if study.config["train"]["amp"] else FP32


def eval_row(study: Study, measured: Measured) -> str:
    return measured.amp if study.config["evaluation"]["amp"] else FP32


def predict_seconds(study: Study, measured: Measured) -> float:
    """One predict_model job: every set of the study, streamed by evaluation.workers loader processes."""
    rate, _ = fed_rate(measured.inference[eval_row(study, measured)], measured, study.config["evaluation"]["workers"])
    return study.evaluated_images() / rate


def robustness_seconds(study: Study, measured: Measured) -> float:
    """One measure_robustness job, in fp32 on arrays in memory: forward passes, and gradient passes
    at job_sizes.GRADIENT_PASS forward passes each."""
    passes = job_sizes.robustness_passes(study.config)
    return (passes["forward"] + job_sizes.GRADIENT_PASS * passes["gradient"]) / measured.inference[FP32]


def eval_hours(study: Study, model: str, measured: Measured) -> float:
    measured_here = model in study.measured()
    return (predict_seconds(study, measured) + (robustness_seconds(study, measured) if measured_here else 0.0)) / 3600


def study_costs(study: Study, measured: Measured) -> list[ModelCost]:
    """Every evaluated model: the trained ones with their training, the loaded ones (vanilla, the
    external models) with their evaluation alone."""
    require(measured, needed_train_rows(study), {FP32, amp_row(study, measured), eval_row(study, measured)})
    costs = []
    for model in study.evaluated():
        if model in study.trained:
            costs.append(train_cost(study, model, measured))
        else:
            costs.append(ModelCost(model, None, 0, 0, None, "", 0.0, eval_hours(study, model, measured),
                                   ["loaded, not trained"]))
    return costs


def needed_train_rows(study: Study) -> set[str]:
    """The train rows the study's models map to (vanilla too: the fresh generators are priced against it)."""
    rows = {measured_row(train_spec(study.config, name)) for name in study.trained}
    return rows | {"vanilla"} if rows else rows


# ------------------------------------------------------------------------------------------------
# Wall time on one node: a greedy schedule of the job graph


@dataclass(frozen=True)
class Job:
    name: str
    gpus: int
    hours: float  # wall time on its GPUs
    after: tuple[str, ...] = ()


def pack(jobs: list[Job], gpus: int, queued: int) -> dict[str, tuple[float, float]]:
    """Start and end (hours) of every job on a node of ``gpus`` GPUs: a job is submitted once the jobs
    it needs are done (in the list's order, at most ``queued`` submitted and unfinished at once:
    the profile's ``jobs``), and starts as soon as its GPUs are free; any submitted job that fits
    starts, in submission order (slurm's backfill, without reservations)."""
    too_big = [job.name for job in jobs if job.gpus > gpus]
    if too_big:
        raise InputError(f"jobs {', '.join(too_big)} need more GPUs than the node's {gpus}")
    done, times, running, submitted, now = set(), {}, [], [], 0.0
    while len(done) < len(jobs):
        for job in jobs:
            ready = job.name not in times and job not in submitted and set(job.after) <= done
            if ready and len(submitted) + len(running) < queued:
                submitted.append(job)
        free = gpus - sum(job.gpus for job in running)
        for job in list(submitted):
            if job.gpus <= free:
                submitted.remove(job)
                running.append(job)
                times[job.name] = (now, now + job.hours)
                free -= job.gpus
        if not running:
            raise InputError(f"jobs wait on jobs that never run: {', '.join(j.name for j in jobs if j.name not in times)}")
        now = min(times[job.name][1] for job in running)
        for job in [job for job in running if times[job.name][1] <= now]:
            running.remove(job)
            done.add(job.name)
    return times


def lower_bound(jobs: list[Job], gpus: int) -> float:
    """No schedule is shorter than the node's share of the GPU-hours or the longest chain of jobs."""
    by_name = {job.name: job for job in jobs}
    chain: dict[str, float] = {}

    def finish(name: str) -> float:
        if name not in chain:
            job = by_name[name]
            chain[name] = job.hours + max((finish(before) for before in job.after), default=0.0)
        return chain[name]

    return max(sum(job.gpus * job.hours for job in jobs) / gpus, max(map(finish, by_name), default=0.0))


def study_jobs(study: Study, costs: list[ModelCost], measured: Measured) -> list[Job]:
    """The study's GPU jobs as Snakemake plans them: a train job per trained model (on
    train.gpus_per_job GPUs), then its predict_model job and, for a measured model, its
    measure_robustness job, each on one GPU. Loaded models' jobs wait on nothing."""
    gpus = study.train_processes
    predict_h, robustness_h = predict_seconds(study, measured) / 3600, robustness_seconds(study, measured) / 3600
    trains = [Job(f"train:{c.name}", gpus, c.train_h / gpus) for c in costs if c.row]  # train_h: DDP's loss in
    after = {c.name: (f"train:{c.name}",) if c.row else () for c in costs}
    predicts = [Job(f"predict_model:{c.name}", 1, predict_h, after[c.name]) for c in costs]
    robustness = [Job(f"measure_robustness:{m}", 1, robustness_h, after[m]) for m in study.measured()]
    return trains + predicts + robustness


# ------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Packing:
    """How the slurm profile sends jobs to one node."""

    gpus: int  # the node's
    queued: int  # the profile's jobs: submitted and unfinished at once
    retries: int
    cpus_per_gpu: dict[str, int]  # by rule


def read_packing(profile: str | Path, gpus: int) -> Packing:
    """The packing a slurm profile (its config.yaml) gives jobs on a node of ``gpus`` GPUs."""
    settings = load_yaml_strict(Path(profile))
    cpus = {rule: values["cpus_per_gpu"] for rule, values in settings.get("set-resources", {}).items()
            if isinstance(values, dict) and "cpus_per_gpu" in values}
    return Packing(gpus, settings.get("jobs", 1), settings.get("retries", 0), cpus)


@dataclass
class Projection:
    study: Study
    measured: Measured
    packing: Packing
    costs: list[ModelCost]
    jobs: list[Job]
    times: dict[str, tuple[float, float]]

    @property
    def wall_h(self) -> float:
        return max((end for _, end in self.times.values()), default=0.0)


def project(study: Study, measured: Measured, packing: Packing) -> Projection:
    costs = study_costs(study, measured)
    jobs = study_jobs(study, costs, measured)
    return Projection(study, measured, packing, costs, jobs, pack(jobs, packing.gpus, packing.queued))


def _h(hours: float) -> str:
    return f"{hours:,.1f}"


def table(projection: Projection) -> list[str]:
    lines = ["| model | epochs | images trained | train images/s (measured row) | GPU-h train | GPU-h eval | GPU-h total "
             "| notes |", "|---|---|---|---|---|---|---|---|"]
    for c in projection.costs:
        if c.row:
            rate = f"{c.train_rate:,.0f} ({c.row}{', loader-bound' if c.limited_by == 'loader' else ''})"
            trained = (f"{c.epochs:g}", f"{c.images:,}", rate)
        else:
            trained = ("-", "-", "-")
        lines.append(f"| {c.name} | {' | '.join(trained)} | {_h(c.train_h)} | {_h(c.eval_h)} | {_h(c.total_h)} | "
                     f"{'; '.join(c.notes)} |")
    total = [sum(getattr(c, key) for c in projection.costs) for key in ("train_h", "eval_h", "total_h")]
    lines.append(f"| **all {len(projection.costs)} models** | | | | **{_h(total[0])}** | **{_h(total[1])}** | "
                 f"**{_h(total[2])}** | |")
    return lines


def wall_time(projection: Projection) -> list[str]:
    p, wall = projection.packing, projection.wall_h
    bound = lower_bound(projection.jobs, p.gpus)
    return [f"Wall time on one {p.gpus}-GPU node: **{_h(wall)} h ({wall / 24:.1f} days)** for "
            f"{len(projection.jobs)} GPU jobs (no schedule beats {_h(bound)} h: the node's share of the GPU-hours "
            "or the longest chain of jobs)."]


def over_time_limit(projection: Projection) -> list[str]:
    """Jobs whose projected wall time passes the runtime they ask slurm for (job_sizes' planning rates)."""
    study, lines = projection.study, []
    for job in projection.jobs:
        rule, model = job.name.split(":")
        asked = study.job_resources(RULE_JOBS.get(rule, rule), model if rule == "train" else None)["runtime"] / 60
        if job.hours > asked:
            lines.append(f"| {job.name} | {_h(job.hours)} | {_h(asked)} |")
    if not lines:
        return []
    return [f"Jobs projected to outlast the time they ask for: slurm ends each at its limit and the profile resubmits "
            f"it (retries: {projection.packing.retries}; a train job resumes from its checkpoint with twice the time, "
            "within cluster.max_runtime_h). Ask for more with `--set-resources RULE:runtime=MINUTES`.", "",
            "| job | projected h | asks for h |", "|---|---|---|", *lines]


def assumptions(projection: Projection) -> list[str]:
    study, m, p = projection.study, projection.measured, projection.packing
    config = study.config
    lines = [
        f"- Rates: {m.path} ({m.where}). Training: section {TRAIN} (whole {m.amp} steps on batches already on the "
        f"device, batch {config['train']['batch_size']}); evaluation: section {INFERENCE} ({eval_row(study, m)} as "
        f"evaluation.amp says; robustness in fp32).",
        f"- Images: {job_sizes.train_images(config):,} per training epoch; {study.evaluated_images():,} per "
        f"predict_model job ({len(study.image_sets())} sets: clean val and ImageNet-C {len(study.in_c_corruptions)} "
        f"corruptions x {len(study.severities)} severities); every model runs on the network's rates ({config['model']}'s "
        "measured; AlexNet, DenseNet121 and the rest are not measured).",
        f"- Loader: a job's rate is at most {config['train']['workers']} (training) / {config['evaluation']['workers']} "
        "(evaluation) DataLoader processes times section loader's images/s per process, decoding the check's sample "
        "photographs (training crops); "
        + ("not measured, so assumed to keep up." if m.loader_per_worker is None else
           f"{m.loader_per_worker:,.0f} images/s per process measured."),
        f"- ANT's fresh generators (not in the timed ANT steps): one before training and one every reinit_every epochs, "
        f"reinit_steps updates of a batch, each priced as the ANT step's time over the vanilla step's. Training also "
        f"checks train.heldout_images ({config['train']['heldout_images']:,}) val images after every epoch.",
        f"- Robustness ({', '.join(study.measured())}): {job_sizes.SEARCH_PASSES} forward passes per image and eps* "
        f"search (the line search's bound), a forward and backward pass as {job_sizes.GRADIENT_PASS} forward passes "
        "(not measured).",
        "- Not counted: the jobs on CPUs (indexing the sets, ImageNet-C generation, tables, figures), queueing, "
        "checkpoint writes, and a resubmitted job's repeated work.",
        f"- Packing: the profile's slurm executor submits every job whose inputs exist (at most jobs: {p.queued} "
        f"unfinished), train on {study.train_processes} GPU(s), predict_model and measure_robustness on 1; slurm starts "
        "any submitted job that fits the free GPUs, in submission order (the study's order of models); eval waits for "
        "its model's training. The node is assumed to hold the CPUs and memory of "
        f"{p.gpus} jobs at once ({_cpu_need(projection)}).",
    ]
    note = ddp_efficiency(study, m)[1]
    if note:
        lines.append(f"- {note}.")
    if m.example_only:
        lines.insert(0, "- **An example of the arithmetic only**: these rates were not measured with ResNet50 on a GPU, "
                        "so the hours below are not the study's cost.")
    return lines


def _cpu_need(projection: Projection) -> str:
    """What the node must hold to run a job on every GPU: the profile's CPUs and the train jobs' memory."""
    study, gpus = projection.study, projection.packing.gpus
    cpus = projection.packing.cpus_per_gpu.get("train")
    parts = [f"{cpus * gpus} CPUs at the profile's cpus_per_gpu {cpus}"] if cpus else []
    if study.trained:
        memory = study.job_resources("train", next(iter(study.trained)))["mem_mb"]
        parts.append(f"{memory * gpus // study.train_processes // 1000} GB for {gpus // study.train_processes} train jobs")
    return ", ".join(parts) or "not sized by the profile"


def markdown(projection: Projection) -> str:
    over = over_time_limit(projection)
    lines = ["# The whole study's GPU cost", "", *table(projection), "", *wall_time(projection), "",
             "Assumptions:", "", *assumptions(projection)]
    if over:
        lines += ["", *over]
    return "\n".join(lines) + "\n"
