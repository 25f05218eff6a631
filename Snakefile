# Reproduction of Rusak et al. (ECCV 2020): noise training against common corruptions.
# Default: the whole study on scikit-learn's embedded digits. Other configs:
#   snakemake --cores N --configfile config/mnist.yaml
#   snakemake --cores N --profile slurm --configfile config/mnist.yaml
import sys

from snakemake.utils import min_version

min_version("9.0")


# The front page of `snakemake --report report.html`.
report: "report/workflow.rst"


# The library of this checkout, not whichever `noisetrain` the environment has installed: a
# second clone with its own version then reruns what its own code changes.
sys.path.insert(0, f"{workflow.basedir}/lib")

from noisetrain.config import ConfigError, check_config_files, check_device, validate_config
from noisetrain.errors import NoisetrainError

# A config file named on the command line is the whole config (schema defaults fill the rest);
# the embedded default is read only when none is named. Merging into config.yaml would silently
# add the digits study's methods to every other config.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


try:
    # Snakemake's YAML reader lets duplicate keys through (the last wins): read the files again.
    check_config_files([str(path) for path in workflow.configfiles])
    _resolved = validate_config(config)
except NoisetrainError as error:  # a config error, or a data folder it names that is laid out wrong
    sys.exit(str(error))
config.clear()
config.update(_resolved)


include: "rules/common.smk"


# One rule set for every dataset kind; the study (noisetrain.study) says which targets a config has.
wildcard_constraints:
    method=names_regex(STUDY.method_names),
    model=names_regex(STUDY.evaluated()),


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


# Downloads need the internet, which cluster compute nodes often lack.
if config["dataset"].get("download"):

    localrules:
        prepare_dataset,


onstart:
    # device: cuda on a machine without a GPU fails here, before any job, for local runs (on a
    # cluster the jobs run elsewhere, and each job checks its own node).
    if workflow.local_exec and config["device"] == "cuda":
        import torch

        try:
            check_device(config, torch.cuda.is_available())
        except ConfigError as error:
            sys.exit(str(error))


rule all:
    default_target: True
    input:
        STUDY.targets(),
        rules.benchmarks_table.output,
        rules.config_record.output,
