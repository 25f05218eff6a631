# Data preparation: the clean arrays once, then one corrupted test set per corruption.


rule prepare_dataset:
    input:
        script=f"{SCRIPTS}/prepare_dataset.py",
    output:
        "results/{dataset}/data/clean.npz",
    params:
        dataset=lambda wildcards: json.dumps(config["dataset"], sort_keys=True),
    log:
        "results/{dataset}/logs/prepare_dataset.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare_dataset.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --dataset '{params.dataset}' --out {output} > {log} 2>&1"


rule corrupt_testset:
    input:
        script=f"{SCRIPTS}/corrupt_testset.py",
        data="results/{dataset}/data/clean.npz",
    output:
        "results/{dataset}/data/corrupted/{corruption}.npz",
    params:
        seed=config["corruptions"]["seed"],
        published=(
            f"--published {config['corruptions']['published_path']}" if config["corruptions"]["published_path"] else ""
        ),
        code_version=CODE_VERSION,
    log:
        "results/{dataset}/logs/corrupt_testset/{corruption}.log",
    benchmark:
        "results/{dataset}/benchmarks/corrupt_testset/{corruption}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} --corruption {wildcards.corruption} "
        "--seed {params.seed} {params.published} --out {output} > {log} 2>&1"
