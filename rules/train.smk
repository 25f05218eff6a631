# Training: vanilla and the adversarial-training baselines (pgd_at, ddn_at) from scratch; every
# noise method fine-tuned from the vanilla model.
# Per-epoch checkpoints live in an undeclared folder, so a failed or killed job keeps them and a
# rerun resumes; only the final model and its log are declared outputs.


rule train:
    input:
        unpack(train_inputs),
        script=script("train"),
        data=results("data/clean.npz"),
    output:
        model=results("models/{method}.pt"),
        log_csv=results("train_logs/{method}.csv"),
        steps_csv=results("train_logs/{method}_steps.csv"),
    log:
        results("logs/train/{method}.log"),
    benchmark:
        results("benchmarks/train/{method}.tsv")
    conda:
        "../envs/noisetrain.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime="24h",
        gpu=GPU,
    params:
        spec=spec_json,
        optional=optional_args,
        checkpoints=results("checkpoints/{method}"),
        checkpoint_minutes=config["train"]["checkpoint_minutes"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} {params.optional} --spec {params.spec:q} "
            "--checkpoint-dir {params.checkpoints:q} --checkpoint-minutes {params.checkpoint_minutes} "
            "--device {params.device} --threads {threads} "
            "--out {output.model:q} --log-csv {output.log_csv:q} --steps-csv {output.steps_csv:q}"
        )


# A checkpoint: which sweep model won is known only after the sweep is evaluated, and the jobs
# that measure "the best GNT model" are then added for the model it names.
checkpoint choose_sweep:
    input:
        script=script("choose_sweep"),
        records=ours("eval/{method}/corruptions.json", method=SWEEP),
        data=results("data/clean.npz"),
    output:
        SWEEP_CHOICE,
    log:
        results("logs/choose_sweep.log"),
    benchmark:
        results("benchmarks/choose_sweep.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="30m",
    params:
        seed=config["seed"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --records {input.records:q} --data {input.data:q} --seed {params.seed} " "--out {output:q}"
        )


# The eps search (appendix B.2): the candidate ANT model with the best mean corruption accuracy.
rule choose_eps:
    input:
        script=script("choose_eps"),
        records=ours("eval/{method}/corruptions.json", method=EPS_CANDIDATES),
    output:
        EPS_CHOICE,
    log:
        results("logs/choose_eps.log"),
    benchmark:
        results("benchmarks/choose_eps.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=2000,
        runtime="10m",
    params:
        candidates=lambda wildcards: json.dumps(EPS_CANDIDATES, sort_keys=True),
        code_version=CODE_VERSION,
    shell:
        logged("python {input.script:q} --records {input.records:q} --candidates {params.candidates:q} --out {output:q}")
