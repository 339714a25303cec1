"""The metric core's errors, in a module of their own so that every metric module can raise them
without importing the registry (which imports the metric modules)."""


class MetricError(ValueError):
    """Inputs to a metric are unusable (too few samples, non-finite values, shape mismatch)."""


class SmallSampleError(MetricError):
    """N is below the feature dimension and small samples were not allowed."""
