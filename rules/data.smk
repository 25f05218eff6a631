# Data: arrays (digits, MNIST) are prepared once, then one corrupted test set per corruption;
# image folders (ImageNet) list the val images evaluated (all, or a stratified subset), generate
# ImageNet-C from them without the published files (one job per corruption x severity) and keep
# the robustness set as arrays.


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
        data=rules.prepare_dataset.output[0],
    output:
        results("data/corrupted/{corruption}.npz"),
    log:
        results("logs/corrupt_testset/{corruption}.log"),
    benchmark:
        results("benchmarks/corrupt_testset/{corruption}.tsv")
    wildcard_constraints:
        corruption=names_regex(STUDY.corruptions),
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


# The smoke set: only the sample's folder is made by the pipeline, never a real ImageNet root.
if STUDY.sample:

    rule make_sample_images:
        input:
            script=script("make_sample_images"),
        output:
            directory(STUDY.image_root),
        log:
            results("logs/make_sample_images.log"),
        conda:
            "../envs/noisetrain.yaml"
        params:
            sample=json.dumps(STUDY.sample, sort_keys=True),
            code_version=CODE_VERSION,
        shell:
            logged("python {input.script:q} --sample {params.sample:q} --out {output:q}")


rule list_val_images:
    input:
        script=script("list_val_images"),
        images=val_images(),
    output:
        results("data/val_files.json"),
    log:
        results("logs/list_val_images.log"),
    benchmark:
        results("benchmarks/list_val_images.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=2000,
        runtime="30m",
    params:
        val=STUDY.val_dir,
        images=config["imagenet_c"]["images"] or 0,
        seed=config["imagenet_c"]["seed"],
        code_version=CODE_VERSION,
    shell:
        logged("python {input.script:q} --val {params.val:q} --images {params.images} --seed {params.seed} --out {output:q}")


rule generate_imagenet_c:
    input:
        script=script("generate_imagenet_c"),
        files=rules.list_val_images.output[0],
        images=val_images(),
    output:
        directory(results("data/imagenet_c/{corruption}/{severity}")),
    log:
        results("logs/generate_imagenet_c/{corruption}/{severity}.log"),
    benchmark:
        results("benchmarks/generate_imagenet_c/{corruption}/{severity}.tsv")
    wildcard_constraints:
        corruption=names_regex(STUDY.in_c_corruptions),
        severity="[1-5]",
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="6h",
    params:
        val=STUDY.val_dir,
        seed=config["imagenet_c"]["seed"],
        quality=config["imagenet_c"]["quality"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --val {params.val:q} --files {input.files:q} --corruption {wildcards.corruption:q} "
            "--severity {wildcards.severity} --seed {params.seed} --quality {params.quality} --out {output:q}"
        )


# The robustness set (Tables 2, 3, 5): val images of the evaluation's list and training images,
# both stratified by class, preprocessed as for evaluation (224 centre crop) and kept as arrays.
rule prepare_robustness_set:
    input:
        script=script("prepare_robustness_set"),
        files=rules.list_val_images.output[0],
        images=val_images(),
    output:
        results("data/robustness.npz"),
    log:
        results("logs/prepare_robustness_set.log"),
    benchmark:
        results("benchmarks/prepare_robustness_set.tsv")
    conda:
        "../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="1h",
    params:
        val=STUDY.val_dir,
        train=STUDY.train_dir,
        images=config["robustness"]["images"],
        seed=config["seed"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --val {params.val:q} --train {params.train:q} --files {input.files:q} "
            "--images {params.images} --seed {params.seed} --out {output:q}"
        )
