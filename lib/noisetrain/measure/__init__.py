"""Stage 4, measurement: clean and corruption accuracy, epsilon* along noise directions, attacks."""
