#!/usr/bin/env bash
# Free tier: Llama 3.1 8B Instruct on one GPU (an L4/A10G 24 GB fits it at 16k context;
# an H100 serves many more concurrent chats). Lhama: VLLM_BASE_URL_8B=http://HOST:8000/v1
set -euo pipefail
exec vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b-instruct \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --max-model-len "${MAX_MODEL_LEN:-16384}" \
  --gpu-memory-utilization 0.90 \
  --enable-prefix-caching \
  ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"}
