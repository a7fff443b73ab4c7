"""MLflow tracking: the only subpackage that imports mlflow."""

import os

# No progress bar per downloaded artifact, and no usage telemetry: MLflow would send a record of every
# logging call to its servers, while sweeps run offline and on private clusters and each record costs the
# writer time (set MLFLOW_DISABLE_TELEMETRY=false to opt in).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
