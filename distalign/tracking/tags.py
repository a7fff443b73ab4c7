"""The names a sweep's MLflow runs carry: written by the tracker, read back by ``readback``."""

from __future__ import annotations

from distalign.scoring.results import ITEMS_FILE

TAG_PARENT = "mlflow.parentRunId"
TAG_SPEC = "distalign.spec_hash"
TAG_SWEEP = "distalign.sweep_id"
#: ``sweep`` on a parent run, ``cell`` on a child run
TAG_KIND = "distalign.kind"
TAG_STATUS = "distalign.status"
TAG_ERROR = "distalign.error"
#: a cell's provider batch ids (batch mode), comma-separated
TAG_BATCHES = "distalign.batch_ids"
TAG_GIT = "distalign.git_revision"
#: a cell run's scored rows, named as in the sweep folder
ITEMS_ARTIFACT = ITEMS_FILE
