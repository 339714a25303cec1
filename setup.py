"""dcgan-tfx: a TFX pipeline that trains DCGANs on colour photos and pushes FID-gated generators.

Reproducible installs use the lock file (``requirements.lock``, made with ``uv pip compile``);
``scripts/setup-env`` installs it and then this package. The ranges here are what the code
needs; the lock pins what CI tests.
"""
from setuptools import find_packages, setup

setup(
    name="dcgan-tfx",
    version="0.1.0",
    description="TFX pipeline: ingest photos, tf.Transform, DCGAN Trainer, FID-gated Pusher.",
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["dcgan_common", "dcgan_common.*", "pipeline", "pipeline.*",
                                    "components", "components.*", "trainer", "trainer.*",
                                    "kubeflow", "kubeflow.*"]),
    # Custom artifact types' import path on Kubeflow V2 / Vertex (see the module).
    py_modules=["dcgan_tfx"],
    install_requires=[
        "tfx==1.21.0",
        "tensorflow>=2.21,<2.22",
        "apache-beam[gcp]>=2.60,<3",
        "tensorflow-transform==1.21.0",
        "tensorflow-model-analysis==0.52.0",
        "google-cloud-storage>=2.10",
        "google-cloud-aiplatform>=1.60",
        # KubeflowV2DagRunner needs the pipeline-spec protos; tfx's `kfp` extra only
        # installs kfp for Python < 3.12 (platform.md), so we ask for the spec directly.
        "kfp-pipeline-spec>=0.6,<2.17",
        "pillow>=10",
        "tensorboard>=2.20",
        "numpy",
        "scipy",
    ],
    extras_require={
        "test": ["pytest>=8", "gcp-storage-emulator>=2025.0.0"],
    },
    package_data={"pipeline": ["raw_schema.pbtxt"]},
    entry_points={"console_scripts": ["dcgan-tfx=pipeline.cli:main"]},
)
