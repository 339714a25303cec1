"""Read one pipeline run back from ML Metadata: what each component did and produced.

The run summary (pipeline/summary.py) and the HTML report read runs through this module only,
so they describe what MLMD recorded, not what the runner believes happened.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArtifactRecord:
    """One output artifact: MLMD type name, URI and custom properties (plain Python values)."""

    type_name: str
    uri: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeRecord:
    """One component's execution in the run. ``state``: MLMD execution state name (COMPLETE, CACHED, FAILED…)."""

    node_id: str
    state: str
    seconds: float = 0.0          # execution wall time as MLMD recorded it (create → last update)
    outputs: dict[str, list[ArtifactRecord]] = field(default_factory=dict)


@dataclass
class RunRecord:
    pipeline_name: str
    run_id: str
    nodes: dict[str, NodeRecord] = field(default_factory=dict)

    def output(self, node_id: str, key: str) -> ArtifactRecord | None:
        """The first artifact a node wrote under output ``key``, or None if it wrote none."""
        node = self.nodes.get(node_id)
        artifacts = node.outputs.get(key, []) if node else []
        return artifacts[0] if artifacts else None


def open_store(metadata_path: str):
    """A read-only MLMD store on a sqlite file. Raises FileNotFoundError if the file is missing."""
    import os

    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"no ML Metadata database at {metadata_path}")
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)


def runs_of_pipeline(store, pipeline_name: str) -> list:
    """``pipeline_run`` contexts that hold executions of ``pipeline_name``, oldest first."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return []
    run_type = store.get_context_type("pipeline_run")
    runs = {}
    for execution in store.get_executions_by_context(pipeline_ctx.id):
        for ctx in store.get_contexts_by_execution(execution.id):
            if ctx.type_id == run_type.id:
                runs[ctx.id] = ctx
    return sorted(runs.values(), key=lambda c: (c.create_time_since_epoch, c.id))


def _value(v) -> Any:
    kind = v.WhichOneof("value")
    if kind == "proto":
        return str(v.proto)
    if kind == "struct_value":
        from google.protobuf import json_format
        return json_format.MessageToDict(v.struct_value)
    return getattr(v, kind) if kind else None


def read_run(metadata_path: str, pipeline_name: str, run_id: str | None = None) -> RunRecord:
    """Collect every execution of one run (default: the newest) and its output artifacts.

    Raises:
      FileNotFoundError: the MLMD file does not exist.
      LookupError: the pipeline or the run is not recorded.
    """
    from ml_metadata.proto import metadata_store_pb2

    store = open_store(metadata_path)
    runs = runs_of_pipeline(store, pipeline_name)
    if not runs:
        raise LookupError(f"no run of pipeline {pipeline_name!r} in {metadata_path}")
    if run_id is None:
        run_ctx = runs[-1]
    else:
        matches = [c for c in runs if c.name == run_id]
        if not matches:
            raise LookupError(f"run {run_id!r} not found; runs: {[c.name for c in runs]}")
        run_ctx = matches[0]
    record = RunRecord(pipeline_name=pipeline_name, run_id=run_ctx.name)
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    node_type = store.get_context_type("node")
    for execution in store.get_executions_by_context(run_ctx.id):
        node_ctx = [c for c in store.get_contexts_by_execution(execution.id)
                    if c.type_id == node_type.id]
        node_id = node_ctx[0].name.split(".", 1)[-1] if node_ctx else str(execution.id)
        node = NodeRecord(node_id=node_id,
                          state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                          seconds=(execution.last_update_time_since_epoch
                                   - execution.create_time_since_epoch) / 1000.0)
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else "output"
            art = artifacts[event.artifact_id]
            props = {k: _value(v) for k, v in art.custom_properties.items()}
            props.update({k: _value(v) for k, v in art.properties.items()})
            node.outputs.setdefault(key, []).append(
                ArtifactRecord(type_name=type_names.get(art.type_id, "?"), uri=art.uri, properties=props))
        # A node may run more than once in a run (retries): keep the last.
        record.nodes[node_id] = node
    return record
