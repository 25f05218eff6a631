"""Names of what the report stage writes: cheap to import, so Snakemake can list targets while
building the job graph without loading pandas or matplotlib."""

# The ImageNet-C tables of an image-folder study (noisetrain.report.paper_tables.TABLES, its specs).
IMAGENET_C_TABLES = ("table1", "table4", "table8", "table9", "table10", "table13", "table14", "table15", "table16")
# The robustness tables (noisetrain.report.robustness_tables), by data form (image folders or not):
# the attack table is ImageNet's Table 5 and MNIST's Table 12.
ROBUSTNESS_TABLES = {False: ("table2", "table3", "table12"), True: ("table2", "table3", "table5")}
# The arrays' tables from the records: the corruption tables, then the robustness tables.
TABLE_NAMES = ("table11", "summary", "sigma_sweep", "eps_search", "table16", *ROBUSTNESS_TABLES[False])
