# Evaluation: one tidy JSON record per (dataset, method, metric).


rule evaluate_clean:
    input:
        script=f"{SCRIPTS}/evaluate_clean.py",
        model="results/{dataset}/models/{method}.pt",
        data="results/{dataset}/data/clean.npz",
    output:
        "results/{dataset}/eval/{method}/clean.json",
    params:
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/evaluate_clean/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate_clean/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --model {input.model} --data {input.data} "
        "--method {wildcards.method} --batch-size {params.batch_size} --device {params.device} "
        "--threads {threads} --out {output} > {log} 2>&1"


rule evaluate_corruptions:
    input:
        script=f"{SCRIPTS}/evaluate_corruptions.py",
        model="results/{dataset}/models/{method}.pt",
        sets=corrupted_sets,
    output:
        "results/{dataset}/eval/{method}/corruptions.json",
    params:
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/evaluate_corruptions/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate_corruptions/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --model {input.model} --sets {input.sets} "
        "--dataset {wildcards.dataset} --method {wildcards.method} --batch-size {params.batch_size} "
        "--device {params.device} --threads {threads} --out {output} > {log} 2>&1"
