# Reproduction of Rusak et al. (ECCV 2020): noise training against common corruptions.
# Default: the whole study on scikit-learn's embedded digits. Other configs:
#   snakemake --cores N --configfile config/mnist.yaml
#   snakemake --cores N --profile slurm --configfile config/mnist.yaml
import sys

from noisetrain.config import ConfigError, validate_config


# A config file named on the command line is the whole config (schema defaults fill the rest);
# the embedded default is read only when none is named. Merging into config.yaml would silently
# add the digits study's methods to every other config.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


try:
    _resolved = validate_config(config)
except ConfigError as error:
    sys.exit(str(error))
config.clear()
config.update(_resolved)


include: "rules/common.smk"


wildcard_constraints:
    dataset=DATASET,
    method="|".join(re.escape(m) for m in [*METHODS, BEST_GNT]),
    corruption="|".join(re.escape(c) for c in CORRUPTIONS),


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
