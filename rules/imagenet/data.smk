# The ImageNet wing's data: the val images evaluated (all, or a stratified subset) and, without
# the published files, ImageNet-C generated from them, one job per corruption x severity.


# The smoke set: only the sample's folder is made by the pipeline, never a real ImageNet root.
if SAMPLE:

    rule make_sample_images:
        input:
            script=script("make_sample_images"),
        output:
            directory(IMAGE_ROOT),
        log:
            ours("logs/make_sample_images.log"),
        conda:
            "../../envs/noisetrain.yaml"
        params:
            sample=json.dumps(SAMPLE or {}, sort_keys=True),
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
        "../../envs/noisetrain.yaml"
    resources:
        mem_mb=2000,
        runtime="30m",
    params:
        val=VAL_DIR,
        images=IN_C["images"] or 0,
        seed=IN_C["seed"],
        code_version=CODE_VERSION,
    shell:
        logged("python {input.script:q} --val {params.val:q} --images {params.images} --seed {params.seed} --out {output:q}")


rule generate_imagenet_c:
    input:
        script=script("generate_imagenet_c"),
        files=results("data/val_files.json"),
        images=val_images(),
    output:
        directory(results("data/imagenet_c/{corruption}/{severity}")),
    log:
        results("logs/generate_imagenet_c/{corruption}/{severity}.log"),
    benchmark:
        results("benchmarks/generate_imagenet_c/{corruption}/{severity}.tsv")
    conda:
        "../../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="6h",
    params:
        val=VAL_DIR,
        seed=IN_C["seed"],
        quality=IN_C["quality"],
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
        files=results("data/val_files.json"),
        images=val_images(),
    output:
        results("data/robustness.npz"),
    log:
        results("logs/prepare_robustness_set.log"),
    benchmark:
        results("benchmarks/prepare_robustness_set.tsv")
    conda:
        "../../envs/noisetrain.yaml"
    resources:
        mem_mb=4000,
        runtime="1h",
    params:
        val=VAL_DIR,
        train=TRAIN_DIR,
        images=config["robustness"]["images"],
        seed=config["seed"],
        code_version=CODE_VERSION,
    shell:
        logged(
            "python {input.script:q} --val {params.val:q} --train {params.train:q} --files {input.files:q} "
            "--images {params.images} --seed {params.seed} --out {output:q}"
        )
