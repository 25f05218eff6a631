"""Stage 1, data: the dataset registry (digits, MNIST), prepared arrays and the corruption benchmarks
(MNIST-C implementation, published files, corruption categories)."""
