#!/bin/sh
# Start the MLflow tracking server from environment variables, so one image serves every deployment.
#   MLFLOW_BACKEND_STORE_URI      postgresql://USER:PASSWORD@HOST:5432/DB (required; the password comes
#                                 from the environment, never from the image)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://bucket/prefix or a local folder (default /mlartifacts)
#   MLFLOW_HOST, MLFLOW_PORT      the address to bind (default 0.0.0.0:5000)
#   MLFLOW_ALLOWED_HOSTS          Host headers the server answers (e.g. mlflow:5000 for a compose service
#                                 name); unset -> MLflow's default (localhost and private IPs)
# Extra arguments are passed to `mlflow server` (e.g. --workers 4).
set -eu

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI, e.g. postgresql://mlflow:PASSWORD@postgres:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:=/mlartifacts}"
: "${MLFLOW_HOST:=0.0.0.0}"
: "${MLFLOW_PORT:=5000}"

# Migrate the schema once, before the server's workers start (concurrent first-time migrations race).
mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"

set -- --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" "$@"
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
    set -- --allowed-hosts "$MLFLOW_ALLOWED_HOSTS" "$@"
fi

exec mlflow server \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
    --serve-artifacts \
    "$@"
