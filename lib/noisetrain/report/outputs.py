"""Names of what the report stage writes: cheap to import, so Snakemake can list targets while
building the job graph without loading pandas or matplotlib."""

TABLE_NAMES = ("table11", "summary", "sigma_sweep", "eps_search", "table16", "table2", "table3", "adversarial")
