"""The ImageExampleGen spec's keys, imported by both the component and its executor.

Its own module because the component imports the executor (for EXECUTOR_SPEC): keys defined in
component.py could not be imported by the executor without a cycle.
"""

DATA_ROOT_KEY = "data_root"
INGEST_CONFIG_KEY = "ingest_config"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
EXAMPLES_KEY = "examples"
INGESTION_REPORT_KEY = "ingestion_report"
