# Training, one job per model. Arrays (digits, MNIST): vanilla and the adversarial-training
# baselines (pgd_at, ddn_at) from scratch, every noise method fine-tuned from the vanilla model.
# Image folders (ImageNet, appendix B.1): the vanilla model is loaded (torchvision's pretrained
# ResNet50), every other method fine-tuned from it or its own init_weights, streaming the training
# folder on train.gpus_per_job GPUs (data-parallel through torchrun when more than one).
# Checkpoints live in an undeclared folder, so a preempted, killed or failed job keeps them and a
# rerun resumes (SIGTERM / SIGUSR1 from slurm make the job checkpoint and stop); only the final
# model and its logs are declared outputs.


rule train:
    input:
        unpack(train_inputs),
        script=script("train_images" if STUDY.image_folders else "train"),
    output:
        model=results("models/{method}.pt"),
        log_csv=results("train_logs/{method}.csv"),
        steps_csv=results("train_logs/{method}_steps.csv"),
    log:
        results("logs/train/{method}.log"),
    benchmark:
        results("benchmarks/train/{method}.tsv")
    wildcard_constraints:
        method=names_regex(STUDY.trained),
    conda:
        "../envs/noisetrain.yaml"
    threads: STUDY.job_threads("train")
    resources:
        **STUDY.train_resources(),
    params:
        launcher=STUDY.launcher(),
        data=train_data_args,
        spec=spec_json,
        checkpoints=results("checkpoints/{method}"),
        checkpoint_minutes=config["train"]["checkpoint_minutes"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "{params.launcher} {input.script:q} {params.data} --spec {params.spec:q} "
            "--checkpoint-dir {params.checkpoints:q} --checkpoint-minutes {params.checkpoint_minutes} "
            "--device {params.device} --threads {threads} "
            "--out {output.model:q} --log-csv {output.log_csv:q} --steps-csv {output.steps_csv:q}"
        )


# A checkpoint: which sweep model won is known only after the sweep is evaluated, and the jobs
# that measure "the best GNT model" are then added for the model it names.
checkpoint choose_sweep:
    input:
        script=script("choose_sweep"),
        records=ours("eval/{method}/corruptions.json", method=STUDY.sweep),
        data=rules.prepare_dataset.output[0],
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
        records=ours("eval/{method}/corruptions.json", method=STUDY.eps_candidates),
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
        candidates=lambda wildcards: json.dumps(STUDY.eps_candidates, sort_keys=True),
        code_version=CODE_VERSION,
    shell:
        logged("python {input.script:q} --records {input.records:q} --candidates {params.candidates:q} --out {output:q}")


if STUDY.searched:

    # The searched method (eps 'search', no factor) is the winning candidate: the paper's line search
    # keeps the model it picked, and training it again would give the same model bit for bit.
    rule adopt_eps_choice:
        input:
            script=script("adopt_eps_choice"),
            choice=EPS_CHOICE,
            models=ours("models/{method}.pt", method=STUDY.eps_candidates),
            log_csvs=ours("train_logs/{method}.csv", method=STUDY.eps_candidates),
            steps_csvs=ours("train_logs/{method}_steps.csv", method=STUDY.eps_candidates),
        output:
            model=results("models/{method}.pt"),
            log_csv=results("train_logs/{method}.csv"),
            steps_csv=results("train_logs/{method}_steps.csv"),
        log:
            results("logs/adopt_eps_choice/{method}.log"),
        benchmark:
            results("benchmarks/adopt_eps_choice/{method}.tsv")
        wildcard_constraints:
            method=names_regex(STUDY.searched),
        localrule: True
        conda:
            "../envs/noisetrain.yaml"
        params:
            candidates=list(STUDY.eps_candidates),
        shell:
            logged(
                "python {input.script:q} --choice {input.choice:q} --candidates {params.candidates:q} "
                "--models {input.models:q} --log-csvs {input.log_csvs:q} --steps-csvs {input.steps_csvs:q} "
                "--method {wildcards.method:q} --out {output.model:q} {output.log_csv:q} {output.steps_csv:q}"
            )

    ruleorder: adopt_eps_choice > train
