# Fine-tuning on ImageNet (appendix B.1): every method but vanilla starts from the vanilla model's
# weights (torchvision's pretrained ResNet50) or its own init_weights, and streams the training
# folder. One job per method, on train.gpus_per_job GPUs (data-parallel through torchrun when more
# than one). Checkpoints live in an undeclared folder, so a preempted or failed job keeps them and
# Snakemake's retry resumes; SIGTERM / SIGUSR1 from slurm make the job checkpoint and stop.


rule train:
    input:
        unpack(train_image_inputs),
        script=script("train_images"),
        files=results("data/val_files.json"),
    output:
        model=results("models/{method}.pt"),
        log_csv=results("train_logs/{method}.csv"),
        steps_csv=results("train_logs/{method}_steps.csv"),
    log:
        results("logs/train/{method}.log"),
    benchmark:
        results("benchmarks/train/{method}.tsv")
    wildcard_constraints:
        method="|".join(re.escape(m) for m in TRAINED) or "(?!)",
    conda:
        "../../envs/noisetrain.yaml"
    threads: max(1, TRAIN["workers"]) * GPUS_PER_JOB
    resources:
        mem_mb=32000 * GPUS_PER_JOB,
        runtime="72h",
        gpu=GPU * GPUS_PER_JOB,
    params:
        launcher=launcher(),
        spec=spec_json,
        weights=lambda wildcards: initial_weights(config, wildcards.method),
        train_dir=TRAIN_DIR,
        val_dir=VAL_DIR,
        heldout=f"--heldout-images {TRAIN['heldout_images']}" if TRAIN["heldout_images"] else "",
        workers=TRAIN["workers"],
        amp="--amp" if TRAIN["amp"] else "--no-amp",
        device=config["device"],
        checkpoints=results("checkpoints/{method}"),
        checkpoint_minutes=TRAIN["checkpoint_minutes"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "{params.launcher} {input.script:q} --train-dir {params.train_dir:q} --val-dir {params.val_dir:q} "
            "--val-files {input.files:q} {params.heldout} --spec {params.spec:q} --weights {params.weights:q} "
            "--checkpoint-dir {params.checkpoints:q} --checkpoint-minutes {params.checkpoint_minutes} "
            "--workers {params.workers} --device {params.device} {params.amp} --threads {threads} "
            "--out {output.model:q} --log-csv {output.log_csv:q} --steps-csv {output.steps_csv:q}"
        )
