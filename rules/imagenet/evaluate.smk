# Decode once, evaluate many: one job per image set reads its folder once and runs every model of
# the evaluation set on each batch, caching each model's top-5 per image. A job reruns when the
# model list changes, and then computes only the models whose cached predictions are missing.


rule predict_clean:
    input:
        script=script("predict_set"),
        files=results("data/val_files.json"),
        images=val_images(),
        weights=weight_files(),
    output:
        results("predictions/clean/manifest.json"),
    log:
        results("logs/predict/clean.log"),
    benchmark:
        results("benchmarks/predict/clean.tsv")
    conda:
        "../../envs/noisetrain.yaml"
    threads: max(1, config["evaluation"]["workers"])
    resources:
        mem_mb=16000,
        runtime="4h",
        gpu=GPU,
    params:
        **PREDICT_PARAMS,
        source=VAL_DIR,
        corruption="clean",
        severity=0,
    shell:
        PREDICT_SHELL


rule predict_corrupted:
    input:
        unpack(corrupted_inputs),
        script=script("predict_set"),
        files=results("data/val_files.json"),
        weights=weight_files(),
    output:
        results("predictions/{corruption}/{severity}/manifest.json"),
    log:
        results("logs/predict/{corruption}/{severity}.log"),
    benchmark:
        results("benchmarks/predict/{corruption}/{severity}.tsv")
    conda:
        "../../envs/noisetrain.yaml"
    threads: max(1, config["evaluation"]["workers"])
    resources:
        mem_mb=16000,
        runtime="4h",
        gpu=GPU,
    params:
        **PREDICT_PARAMS,
        source=lambda wildcards: corrupted_source(wildcards.corruption, wildcards.severity),
        corruption=lambda wildcards: wildcards.corruption,
        severity=lambda wildcards: wildcards.severity,
    shell:
        PREDICT_SHELL


# Robustness, one job per measured model (robustness.methods): median epsilon* along Gaussian,
# uniform and adversarial noise (fresh generators trained on the set's training images) and the
# accuracy under PGD and DDN, by the small datasets' script, on the GPU when the job has one.
rule measure_robustness:
    input:
        script=script("measure_robustness"),
        data=results("data/robustness.npz"),
        weights=robustness_weights,
    output:
        noise=results("eval/{model}/noise_robustness.json"),
        adversarial=results("eval/{model}/adversarial.json"),
        generators=results("eval/{model}/an_generators.pt"),
    log:
        results("logs/measure_robustness/{model}.log"),
    benchmark:
        results("benchmarks/measure_robustness/{model}.tsv")
    wildcard_constraints:
        model="|".join(re.escape(m) for m in ROBUSTNESS_MODELS) or "(?!)",
    conda:
        "../../envs/noisetrain.yaml"
    threads: max(1, config["evaluation"]["workers"])
    resources:
        mem_mb=16000,
        runtime="12h",
        gpu=GPU,
    params:
        spec=robustness_spec,
        robustness=ROBUSTNESS_SETTINGS,
        attacks=json.dumps(config["attacks"], sort_keys=True),
        seed=config["seed"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --model-spec {params.spec:q} --data {input.data:q} --method {wildcards.model:q} "
            "--robustness {params.robustness:q} --attacks {params.attacks:q} --seed {params.seed} --device {params.device} "
            "--threads {threads} --noise-out {output.noise:q} --adversarial-out {output.adversarial:q} "
            "--generators-out {output.generators:q}"
        )
