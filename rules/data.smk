# Data preparation: the clean arrays once, then one corrupted test set per corruption.


rule prepare_dataset:
    input:
        script=script("prepare_dataset"),
    output:
        results("data/clean.npz"),
    log:
        results("logs/prepare_dataset.log"),
    benchmark:
        results("benchmarks/prepare_dataset.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="30m",
    params:
        dataset=json.dumps(config["dataset"], sort_keys=True),
        code_version=CODE_VERSION,
    shell:
        logged("python {input.script:q} --dataset {params.dataset:q} --out {output:q}")


rule corrupt_testset:
    input:
        script=script("corrupt_testset"),
        data=results("data/clean.npz"),
    output:
        results("data/corrupted/{corruption}.npz"),
    log:
        results("logs/corrupt_testset/{corruption}.log"),
    benchmark:
        results("benchmarks/corrupt_testset/{corruption}.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="1h",
    params:
        seed=config["corruptions"]["seed"],
        published=config["corruptions"]["published_path"] or "",
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --data {input.data:q} --corruption {wildcards.corruption:q} "
            "--seed {params.seed} --published={params.published:q} --out {output:q}"
        )
