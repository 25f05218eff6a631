# Evaluate each model when it is ready: one job per model runs it on every image set (clean val and
# each ImageNet-C corruption x severity) and caches its top-5 per image. Each set is indexed once by
# the hash of its files' names and bytes; a model's cached predictions on a set are reused while
# the model and that hash stay the same, so a regenerated set is evaluated anew and a retrained
# model reruns its own job alone.


rule index_image_set:
    input:
        script=script("index_image_set"),
        files=results("data/val_files.json"),
        images=set_images,
    output:
        results("data/image_sets/{corruption}/{severity}.json"),
    log:
        results("logs/index_image_set/{corruption}/{severity}.log"),
    benchmark:
        results("benchmarks/index_image_set/{corruption}/{severity}.tsv")
    wildcard_constraints:
        corruption="|".join(re.escape(c) for c in ["clean", *IN_C_CORRUPTIONS]),
        severity="[0-5]",
    conda:
        "../../envs/noisetrain.yaml"
    resources:
        mem_mb=2000,
        runtime="1h",
    params:
        # Another root is another copy: hashed anew (equal bytes give the same index).
        source=lambda wildcards: set_source(wildcards.corruption, wildcards.severity),
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --source {params.source:q} --files {input.files:q} "
            "--corruption {wildcards.corruption:q} --severity {wildcards.severity} --out {output:q}"
        )


rule predict_model:
    input:
        script=script("predict_model"),
        files=results("data/val_files.json"),
        sets=set_indexes(),  # each stands for its images (the sample's too): regenerated images rerun it
        weights=lambda wildcards: weights_input(wildcards.model),
    output:
        results("predictions/{model}/manifest.json"),
    log:
        results("logs/predict/{model}.log"),
    benchmark:
        results("benchmarks/predict/{model}.tsv")
    wildcard_constraints:
        model="|".join(re.escape(m) for m in EVAL_MODELS) or "(?!)",
    conda:
        "../../envs/noisetrain.yaml"
    threads: max(1, config["evaluation"]["workers"])
    resources:
        mem_mb=16000,
        runtime="8h",
        gpu=GPU,
    params:
        spec=model_spec,
        batch_size=config["evaluation"]["batch_size"],
        workers=config["evaluation"]["workers"],
        device=config["device"],
        amp="--amp" if config["evaluation"]["amp"] else "--no-amp",
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --model {params.spec:q} --sets {input.sets:q} --files {input.files:q} "
            "--batch-size {params.batch_size} --workers {params.workers} --threads {threads} --device {params.device} "
            "{params.amp} --out {output:q}"
        )


# Robustness, one job per measured model (robustness.methods): median epsilon* along Gaussian,
# uniform and adversarial noise (fresh generators trained on the set's training images) and the
# accuracy under PGD and DDN, by the small datasets' script, on the GPU when the job has one.
rule measure_robustness:
    input:
        script=script("measure_robustness"),
        data=results("data/robustness.npz"),
        weights=lambda wildcards: weights_input(wildcards.model),
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
        spec=model_spec,
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
