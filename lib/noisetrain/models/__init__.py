"""Classifiers: the architecture registry, devices, and the model file format."""
