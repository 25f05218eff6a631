# Evaluate each model when it is ready: one job per model runs it on every set of the study and
# caches its top-5 per image (predictions/<model>/, lib/noisetrain/measure/prediction_cache.py).
# A set is the clean test set or one corruption x severity: on arrays the clean and corrupted
# arrays, on image folders the clean val folder and each ImageNet-C folder, each indexed once by
# the hash of its files' names and bytes. Cached predictions are reused while the model and the
# set's content stay the same, so a regenerated set is evaluated anew and a retrained model reruns
# its own job alone. Every metric is computed from the cache.


rule index_image_set:
    input:
        script=script("index_image_set"),
        files=rules.list_val_images.output[0],
        images=set_images,
    output:
        results("data/image_sets/{corruption}/{severity}.json"),
    log:
        results("logs/index_image_set/{corruption}/{severity}.log"),
    benchmark:
        results("benchmarks/index_image_set/{corruption}/{severity}.tsv")
    wildcard_constraints:
        corruption=names_regex(["clean", *STUDY.in_c_corruptions]),
        severity="[0-5]",
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=2000,
        runtime="1h",
    params:
        # Another root is another copy: hashed anew (equal bytes give the same index).
        source=lambda wildcards: STUDY.set_source(wildcards.corruption, wildcards.severity),
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --source {params.source:q} --files {input.files:q} "
            "--corruption {wildcards.corruption:q} --severity {wildcards.severity} --out {output:q}"
        )


rule predict_model:
    input:
        unpack(predict_inputs),
        script=script("predict_model"),
    output:
        results("predictions/{model}/manifest.json"),
    log:
        results("logs/predict/{model}.log"),
    benchmark:
        results("benchmarks/predict/{model}.tsv")
    wildcard_constraints:
        model=names_regex(STUDY.evaluated()),
    conda:
        "../envs/noisetrain.yaml"
    threads: STUDY.job_threads("predict")
    resources:
        **STUDY.job_resources("predict"),
    params:
        model=model_args,
        data=predict_data_args,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} {params.model} --sets {input.sets:q} {params.data} "
            "--batch-size {params.batch_size} --threads {threads} --device {params.device} --out {output:q}"
        )


# Arrays: clean accuracy, accuracy per corruption and severity, and per-image correctness (the
# claims table's bootstrap), as tidy records computed from the model's cached predictions.
rule score_model:
    input:
        script=script("score_model"),
        predictions=rules.predict_model.output[0],
        model=model_file,
        data=rules.prepare_dataset.output[0],
        sets=corrupted_sets,
    output:
        clean=results("eval/{model}/clean.json"),
        corruptions=results("eval/{model}/corruptions.json"),
        correct=results("eval/{model}/correct.npz"),
    log:
        results("logs/score_model/{model}.log"),
    benchmark:
        results("benchmarks/score_model/{model}.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="30m",
    params:
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --predictions {input.predictions:q} --model {input.model:q} --data {input.data:q} "
            "--sets {input.sets:q} --method {wildcards.model:q} --clean-out {output.clean:q} "
            "--corruptions-out {output.corruptions:q} --correct-out {output.correct:q}"
        )


# Robustness, one job per measured model (robustness.methods): median epsilon* along Gaussian,
# uniform and adversarial noise (fresh generators trained on the training images) and the accuracy
# under PGD and DDN, on the test arrays or ImageNet's robustness set, on the GPU when the job has one.
rule measure_robustness:
    input:
        unpack(robustness_inputs),
        script=script("measure_robustness"),
        data=STUDY.robustness_data(),
        model=model_file,
    output:
        noise=results("eval/{model}/noise_robustness.json"),
        adversarial=results("eval/{model}/adversarial.json"),
        generators=results("eval/{model}/an_generators.pt"),
        distances=results("eval/{model}/distances.npz"),
    log:
        results("logs/measure_robustness/{model}.log"),
    benchmark:
        results("benchmarks/measure_robustness/{model}.tsv")
    wildcard_constraints:
        model=names_regex(STUDY.evaluated()),
    conda:
        "../envs/noisetrain.yaml"
    threads: STUDY.job_threads("robustness")
    resources:
        **STUDY.job_resources("robustness"),
    params:
        model=model_args,
        robustness=robustness_settings(),
        attacks=json.dumps(config["attacks"], sort_keys=True),
        choice=optional_args,
        seed=config["seed"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} {params.model} --data {input.data:q} --method {wildcards.model:q} "
            "--robustness {params.robustness:q} --attacks {params.attacks:q} {params.choice} --seed {params.seed} "
            "--device {params.device} --threads {threads} --noise-out {output.noise:q} --adversarial-out {output.adversarial:q} "
            "--generators-out {output.generators:q} --distances-out {output.distances:q}"
        )
