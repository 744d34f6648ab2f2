"""One-off measurements behind README's numbers that are not the benchmark: training throughput by
precision, peak memory of ``generate()``, and how outputs depend on how sources are handed over."""
