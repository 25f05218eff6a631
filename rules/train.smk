# Training: vanilla from scratch; every noise method fine-tuned from the vanilla model.
# Per-epoch checkpoints live in an undeclared folder, so a failed job keeps them and a rerun
# resumes; only the final model and its log are declared outputs.


rule train:
    input:
        unpack(train_inputs),
        script=f"{SCRIPTS}/train.py",
        data="results/{dataset}/data/clean.npz",
    output:
        model="results/{dataset}/models/{method}.pt",
        log_csv="results/{dataset}/train_logs/{method}.csv",
    params:
        spec=spec_json,
        optional=optional_args,
        checkpoints="results/{dataset}/checkpoints/{method}",
        device=config["device"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/train/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/train/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --data {input.data} {params.optional} --spec '{params.spec}' "
        "--checkpoint-dir {params.checkpoints} --device {params.device} --threads {threads} "
        "--out {output.model} --log-csv {output.log_csv} > {log} 2>&1"


rule choose_ant_eps:
    input:
        script=f"{SCRIPTS}/choose_ant_eps.py",
        records=sweep_records,
        data="results/{dataset}/data/clean.npz",
    output:
        "results/{dataset}/selection/ant_eps.json",
    params:
        seed=config["seed"],
    log:
        "results/{dataset}/logs/choose_ant_eps.log",
    benchmark:
        "results/{dataset}/benchmarks/choose_ant_eps.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --records {input.records} --data {input.data} --seed {params.seed} "
        "--out {output} > {log} 2>&1"
