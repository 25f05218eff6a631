# Evaluation: one job per model caches its top-5 ids on every test set (predictions/<method>/, the
# same cache as ImageNet's) and writes, from the cache, one tidy JSON record per metric.


rule evaluate:
    input:
        script=script("evaluate"),
        model=results("models/{method}.pt"),
        data=results("data/clean.npz"),
        sets=corrupted_sets,
    output:
        clean=results("eval/{method}/clean.json"),
        corruptions=results("eval/{method}/corruptions.json"),
        correct=results("eval/{method}/correct.npz"),
        predictions=results("predictions/{method}/manifest.json"),
    log:
        results("logs/evaluate/{method}.log"),
    benchmark:
        results("benchmarks/evaluate/{method}.tsv")
    conda:
        "../envs/noisetrain.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime="2h",
        gpu=GPU,
    params:
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --model {input.model:q} --data {input.data:q} --sets {input.sets:q} "
            "--method {wildcards.method:q} --batch-size {params.batch_size} --device {params.device} "
            "--threads {threads} --predictions-out {output.predictions:q} --clean-out {output.clean:q} "
            "--corruptions-out {output.corruptions:q} --correct-out {output.correct:q}"
        )


rule measure_robustness:
    input:
        unpack(robustness_inputs),
        script=script("measure_robustness"),
        model=results("models/{method}.pt"),
        data=results("data/clean.npz"),
    output:
        noise=results("eval/{method}/noise_robustness.json"),
        adversarial=results("eval/{method}/adversarial.json"),
        generators=results("eval/{method}/an_generators.pt"),
    log:
        results("logs/measure_robustness/{method}.log"),
    benchmark:
        results("benchmarks/measure_robustness/{method}.tsv")
    conda:
        "../envs/noisetrain.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime="6h",
        gpu=GPU,
    params:
        robustness=json.dumps(config["robustness"], sort_keys=True),
        attacks=json.dumps(config["attacks"], sort_keys=True),
        choice=optional_args,
        seed=config["seed"],
        device=config["device"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --model {input.model:q} --data {input.data:q} --method {wildcards.method:q} "
            "--robustness {params.robustness:q} --attacks {params.attacks:q} {params.choice} --seed {params.seed} "
            "--device {params.device} --threads {threads} --noise-out {output.noise:q} --adversarial-out {output.adversarial:q} "
            "--generators-out {output.generators:q}"
        )
