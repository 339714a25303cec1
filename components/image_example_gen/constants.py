"""The ImageExampleGen spec's keys, imported by both the component and its executor.

Its own module because the component imports the executor (for EXECUTOR_SPEC): keys defined in
component.py could not be imported by the executor without a cycle.

``input_base``, ``input_config``, ``range_config`` and ``examples`` are TFX's standard
FileBasedExampleGen keys (tfx/types/standard_component_specs.py): TFX's FileBasedDriver, locally
and in the Kubeflow V2 / Vertex pre-cache-check hook, reads and writes exactly these names.
"""

INPUT_BASE_KEY = "input_base"
INPUT_CONFIG_KEY = "input_config"
RANGE_CONFIG_KEY = "range_config"
INGEST_CONFIG_KEY = "ingest_config"
EXAMPLES_KEY = "examples"
INGESTION_REPORT_KEY = "ingestion_report"
