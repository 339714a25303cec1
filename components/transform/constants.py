"""The ImageTransform spec's keys, imported by both the component and its executor.

Its own module because the component imports the executor (for EXECUTOR_SPEC): keys defined in
component.py could not be imported by the executor without a cycle.
"""

EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
TRANSFORM_GRAPH_KEY = "transform_graph"
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"
PREPROCESSING_FN_KEY = "preprocessing_fn"
CUSTOM_CONFIG_KEY = "custom_config"
BATCH_SIZE_KEY = "batch_size"
