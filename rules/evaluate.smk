# Evaluation: one job per model writes one tidy JSON record per (dataset, method, metric).


rule evaluate:
    input:
        script=f"{SCRIPTS}/evaluate.py",
        model="results/{dataset}/models/{method}.pt",
        data="results/{dataset}/data/clean.npz",
        sets=corrupted_sets,
    output:
        clean="results/{dataset}/eval/{method}/clean.json",
        corruptions="results/{dataset}/eval/{method}/corruptions.json",
    params:
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/evaluate/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --model {input.model} --data {input.data} --sets {input.sets} "
        "--method {wildcards.method} --batch-size {params.batch_size} --device {params.device} "
        "--threads {threads} --clean-out {output.clean} --corruptions-out {output.corruptions} > {log} 2>&1"
