#!/usr/bin/env bash
# Serve a tfgc serving export with the official TensorFlow Serving image: REST on port 8501, gRPC on 8500.
#
#   python -m tfgc export --model runs/gc-small/model --format serving --out exports/serving
#   scripts/serve.sh exports/serving/gc-small            # the folder that holds the numbered versions
#   python scripts/serving_client.py compress photo.png photo.tfgc \
#       --manifest exports/serving/gc-small/1/export.json
#
# Environment: REST_PORT (8501), GRPC_PORT (8500), IMAGE (tensorflow/serving:2.14.1, the TensorFlow tfgc pins).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 EXPORT/serving/NAME   (the folder of numbered versions written by python -m tfgc export)" >&2
    exit 2
fi
model_dir=$(cd "$1" && pwd)
name=$(basename "$model_dir")
if ! ls "$model_dir" | grep -qE '^[0-9]+$'; then
    echo "$0: $model_dir holds no numbered version folder; pass EXPORT/serving/NAME, not a version" >&2
    exit 2
fi

exec docker run --rm \
    -p "${REST_PORT:-8501}:8501" -p "${GRPC_PORT:-8500}:8500" \
    --mount "type=bind,source=$model_dir,target=/models/$name,readonly" \
    -e "MODEL_NAME=$name" \
    "${IMAGE:-tensorflow/serving:2.14.1}"
