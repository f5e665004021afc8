#!/usr/bin/env bash
# Pro tier: Llama 3.1 405B Instruct in FP8 on one node of 8 x 80 GB GPUs (tensor parallel 8).
# Across two nodes: start a Ray cluster (ray start --head / ray start --address=HEAD:6379)
# and add --pipeline-parallel-size 2 --distributed-executor-backend ray. Lhama: VLLM_BASE_URL_405B
set -euo pipefail
exec vllm serve meta-llama/Llama-3.1-405B-Instruct-FP8 \
  --served-model-name llama-3.1-405b-instruct \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --tensor-parallel-size "${TP:-8}" \
  ${PP:+--pipeline-parallel-size "$PP" --distributed-executor-backend ray} \
  --max-model-len "${MAX_MODEL_LEN:-65536}" \
  --gpu-memory-utilization 0.92 \
  --enable-prefix-caching \
  ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"}
