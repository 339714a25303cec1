"""The import path of the project's custom artifact types inside Kubeflow V2 / Vertex steps.

TFX's Kubeflow V2 compiler writes a custom artifact type as a schema whose title is its TYPE_NAME,
which must read ``<namespace>.<Title>`` (tfx/orchestration/kubeflow/v2/compiler_utils.py); the
step's entry point then imports that title as ``<module>.<class>`` to rebuild the artifact
(kubeflow_v2_entrypoint_utils._parse_raw_artifact). ``dcgan_tfx.IngestionReport`` therefore has to
be importable under exactly that name, or ImageExampleGen's step fails before its executor starts.
"""
from components.image_example_gen.component import IngestionReport

__all__ = ["IngestionReport"]
