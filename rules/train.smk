# Training: vanilla from scratch; every noise method fine-tuned from the vanilla model.
# Per-epoch checkpoints live in an undeclared folder, so a failed job keeps them and a rerun
# resumes; only the final model and its log are declared outputs.


rule train:
    input:
        unpack(init_model),
        script=f"{SCRIPTS}/train.py",
        data="results/{dataset}/data/clean.npz",
    output:
        model="results/{dataset}/models/{method}.pt",
        log_csv="results/{dataset}/train_logs/{method}.csv",
    params:
        spec=spec_json,
        init=init_arg,
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
        "python {input.script} --data {input.data} {params.init} --spec '{params.spec}' "
        "--checkpoint-dir {params.checkpoints} --device {params.device} --threads {threads} "
        "--out {output.model} --log-csv {output.log_csv} > {log} 2>&1"
