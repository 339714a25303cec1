"""ImageTransform's spec keys, shared by component.py and executor.py (which component.py imports)."""

# Channels
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
TRANSFORM_GRAPH_KEY = "transform_graph"
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"
# Execution properties
PREPROCESSING_FN_KEY = "preprocessing_fn"
TRANSFORM_CONFIG_KEY = "transform_config"   # TransformComponentConfig as JSON (section_to_json)
