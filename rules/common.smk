# What every .smk file wires with: the study (noisetrain.study: its models, sets, tables and
# figures), paths under its results folder, and per-job parameters. The study holds the logic;
# these helpers turn its answers into Snakemake's inputs and command-line arguments.
# Building the job graph imports only light modules (no torch, pandas or matplotlib).
import json
import os
import shlex

from snakemake.io import report as in_report  # report(): a keyword at a line's start in .smk files

import noisetrain
from noisetrain.config import initial_weights, train_spec
from noisetrain.methods import eps_choice
from noisetrain.report.sweep_choice import read_choice
from noisetrain.storage import source_hash
from noisetrain.study import Study

STUDY = Study(config)
# Absolute, so that `snakemake -d OTHER_DIR` writes results elsewhere and still finds the code.
SCRIPTS = f"{workflow.basedir}/workflow_scripts"
CODE_VERSION = noisetrain.__version__
# The table and figure code: the report jobs rerun when it changes.
REPORT_CODE = f"{CODE_VERSION}:{source_hash(f'{workflow.basedir}/lib/noisetrain/report')}"
SWEEP_CHOICE = STUDY.choice_file("auto")
EPS_CHOICE = STUDY.choice_file("search")


def results(path):
    """A path under the study's results folder."""
    return STUDY.path(path)


def ours(path, **wildcards):
    """Paths under the study's results folder, expanded over the given wildcards' values."""
    return expand(results(path), **wildcards)


def script(name):
    return f"{SCRIPTS}/{name}.py"


def logged(command):
    """A job's shell command with its output in its log. Snakemake deletes a job's log before it
    reruns the job, so every attempt is also appended to <log>.history, which it leaves alone:
    the log of a killed or failed attempt survives the rerun."""
    return (
        'echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ): attempt on $(hostname)" | tee -a {log:q}.history > {log:q}; '
        + command
        + " 2>&1 | tee -a {log:q}.history >> {log:q}"
    )


def shell_quote(text):
    return shlex.quote(str(text))


def names_regex(names):
    """A wildcard constraint matching exactly these names (none: nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


# ---------------------------------------------------------------------------------------------
# The sweep's best GNT model: known once choose_sweep has run (a Snakemake checkpoint, after
# which the job graph is re-evaluated).


def chosen_model():
    return read_choice(checkpoints.choose_sweep.get().output[0]).best_method if STUDY.chooses_best_gnt else None


def measured_models():
    return STUDY.measured(chosen_model())


def best_gnt_replicates():
    return STUDY.best_replicates(chosen_model())


# ---------------------------------------------------------------------------------------------
# Inputs


def val_images(wildcards=None):
    """The sample set's folder is made by a rule, so it is an input; a real ImageNet is not tracked
    (Snakemake would stat 50,000 files)."""
    return [STUDY.image_root] if STUDY.sample else []


def corrupted_sets(wildcards=None):
    return ours("data/corrupted/{corruption}.npz", corruption=STUDY.corruptions)


def set_indexes(wildcards=None):
    return [results(f"data/image_sets/{c}/{s}.json") for c, s in STUDY.image_sets()]


def set_images(wildcards):
    """What Snakemake tracks of an image set: the sample's folder, or a generated ImageNet-C folder."""
    if (wildcards.corruption, wildcards.severity) == ("clean", "0"):
        return val_images()
    return [] if config["imagenet_c"]["root"] else [STUDY.corrupted_source(wildcards.corruption, wildcards.severity)]


def jpeg_inputs(wildcards):
    """Fig 9's ImageNet-C JPEG folder, when the study generates it."""
    return [STUDY.jpeg_dir()] if STUDY.jpeg_dir() and not config["imagenet_c"]["root"] else []


def model_file(wildcards):
    return STUDY.model_file(wildcards.model)


def eps_choice_input(eps):
    """{'eps_choice': record} for an eps of 'auto' or 'search', else nothing."""
    record = STUDY.choice_file(eps) if eps else None
    return {"eps_choice": record} if record else {}


def train_inputs(wildcards):
    """What a training job reads: the arrays, or the val list (and the sample's folder); the model it
    starts from (arrays: the vanilla model of the same seed, paper section 4; image folders: its
    initial weights' file); ANT with eps 'auto' or 'search' also waits for that choice."""
    if STUDY.image_folders:
        inputs = {"files": rules.list_val_images.output[0], "images": val_images()}
    else:
        inputs = {"data": rules.prepare_dataset.output[0], **eps_choice_input(eps_choice(STUDY.method_names[wildcards.method]))}
    init = STUDY.init_file(wildcards.method)
    return {**inputs, **({"init": init} if init else {})}


def predict_inputs(wildcards):
    """Every set a model is evaluated on (image folders: each set's index, which stands for its
    images; arrays: the clean and corrupted arrays) and its checkpoint."""
    if STUDY.image_folders:
        return {"sets": set_indexes(), "files": rules.list_val_images.output[0], "model": model_file(wildcards)}
    return {"data": rules.prepare_dataset.output[0], "sets": corrupted_sets(), "model": model_file(wildcards)}


def robustness_inputs(wildcards):
    """The fresh adversarial-noise generators train at the eps of a choice ('auto', 'search') or a number."""
    return eps_choice_input(config["robustness"]["an_eps"])


def table_inputs(wildcards):
    """The tables show the sweep's best GNT model as the GNT row."""
    return {"sweep_choice": SWEEP_CHOICE} if STUDY.chooses_best_gnt else {}


# ---------------------------------------------------------------------------------------------
# Command-line arguments


def optional_args(wildcards, input):
    """--init / --eps-choice / --sweep-choice for the inputs a job has, each path quoted for the shell."""
    flags = {"init": "--init", "eps_choice": "--eps-choice", "sweep_choice": "--sweep-choice"}
    return " ".join(f"{flag} {shell_quote(input[key])}" for key, flag in flags.items() if key in input.keys())


def model_args(wildcards, input):
    """The model of a prediction or robustness job: its file (arrays) or how to build it (image folders)."""
    if STUDY.image_folders:
        return f"--model-spec {shell_quote(STUDY.model_spec(wildcards.model))}"
    return f"--model {shell_quote(input.model[0])}"


def predict_data_args(wildcards, input):
    if STUDY.image_folders:
        evaluation = config["evaluation"]
        amp = "--amp" if evaluation["amp"] else "--no-amp"
        return f"--files {shell_quote(input.files)} --workers {evaluation['workers']} {amp}"
    return f"--data {shell_quote(input.data)}"


def train_data_args(wildcards, input):
    """The training data and the starting model: arrays (--init: the vanilla model), or the streamed
    folders (--weights: a file, a torchvision name or 'random')."""
    if not STUDY.image_folders:
        return f"--data {shell_quote(input.data)} {optional_args(wildcards, input)}"
    train = config["train"]
    heldout = f"--heldout-images {train['heldout_images']}" if train["heldout_images"] else ""
    weights = initial_weights(config, wildcards.method)
    return (
        f"--train-dir {shell_quote(STUDY.train_dir)} --val-dir {shell_quote(STUDY.val_dir)} "
        f"--val-files {shell_quote(input.files)} {heldout} --weights {shell_quote(weights)} "
        f"--workers {train['workers']} {'--amp' if train['amp'] else '--no-amp'}"
        # only when set: an unchanged command keeps existing training jobs from rerunning
        + (f" --decode {train['decode']}" if train["decode"] != "cpu" else "")
    )


def spec_json(wildcards):
    return json.dumps(train_spec(config, wildcards.method), sort_keys=True)


def robustness_settings():
    """What shapes the measurement (robustness.methods only picks the models: not a parameter of each)."""
    return json.dumps({k: v for k, v in config["robustness"].items() if k != "methods"}, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Records (arrays)


def accuracy_records():
    """Clean and corruption records of every model, the best GNT model's replicates included."""
    return ours("eval/{model}/{metric}.json", model=[*STUDY.methods, *best_gnt_replicates()], metric=["clean", "corruptions"])


def eval_records():
    robust = ours("eval/{model}/{metric}.json", model=measured_models(), metric=["noise_robustness", "adversarial"])
    return accuracy_records() + robust


def epsilon_example_models():
    return STUDY.epsilon_example_models(chosen_model())


# ---------------------------------------------------------------------------------------------
# Outputs of the report rules


def table_outputs(names):
    """The .md and .tex of each table, and its .html (caption and table), which `snakemake --report` shows."""
    files = [results(f"tables/{name}.{ext}") for name in names for ext in ("md", "tex")]
    html = [results(f"tables/{name}.html") for name in names]
    return files + [
        in_report(path, caption="../report/table.rst", category="Tables", labels={"table": name})
        for path, name in zip(html, names)
    ]


def figure_output(name):
    """A figure's PNG, shown in the report with its caption, listed by its name (as tables are)."""
    caption = f"../report/{STUDY.figure_caption(name)}.rst"
    return in_report(results(f"figures/{name}.png"), caption=caption, category="Figures", labels={"figure": name})


def output_dir(wildcards, output):
    """The folder of a job's first output (its tables or figures folder)."""
    return os.path.dirname(output[0])
