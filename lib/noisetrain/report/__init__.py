"""Stage 5, report: tidy result records with provenance, the sweep's choice, the paper's values,
tables and figures. Importing this package (not its modules) is free of heavy dependencies."""
