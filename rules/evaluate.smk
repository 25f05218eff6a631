# Evaluation: one job per model writes one tidy JSON record per (dataset, method, metric).


rule evaluate:
    input:
        script=f"{SCRIPTS}/evaluate.py",
        model="results/{dataset}/models/{method}.pt",
        data="results/{dataset}/data/clean.npz",
        sets=corrupted_sets,
    output:
        clean="results/{dataset}/eval/{method}/clean.json",
        corruptions="results/{dataset}/eval/{method}/corruptions.json",
    params:
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/evaluate/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} --model {input.model} --data {input.data} --sets {input.sets} "
        "--method {wildcards.method} --batch-size {params.batch_size} --device {params.device} "
        "--threads {threads} --clean-out {output.clean} --corruptions-out {output.corruptions} > {log} 2>&1"


rule measure_robustness:
    input:
        unpack(robustness_inputs),
        script=f"{SCRIPTS}/measure_robustness.py",
        data="results/{dataset}/data/clean.npz",
    output:
        noise="results/{dataset}/eval/{method}/noise_robustness.json",
        adversarial="results/{dataset}/eval/{method}/adversarial.json",
        generators="results/{dataset}/eval/{method}/an_generators.pt",
    params:
        robustness=lambda wildcards: json.dumps(config["robustness"], sort_keys=True),
        attacks=lambda wildcards: json.dumps(config["attacks"], sort_keys=True),
        eps=lambda wildcards, input: f"--eps-file {input.eps}" if "eps" in input.keys() else "",
        model=robustness_model_args,
        seed=config["seed"],
        code_version=CODE_VERSION,
    threads: config["train"]["threads"]
    log:
        "results/{dataset}/logs/measure_robustness/{method}.log",
    benchmark:
        "results/{dataset}/benchmarks/measure_robustness/{method}.tsv"
    conda:
        "../envs/noisetrain.yaml"
    shell:
        "python {input.script} {params.model} --data {input.data} --method {wildcards.method} "
        "--robustness '{params.robustness}' --attacks '{params.attacks}' {params.eps} --seed {params.seed} "
        "--threads {threads} --noise-out {output.noise} --adversarial-out {output.adversarial} "
        "--generators-out {output.generators} > {log} 2>&1"
