#!/usr/bin/env bash
# Plus tier: Llama 3.1 70B Instruct, bf16 across 4 GPUs of 80 GB (tensor parallel), or
# FP8 on 2 (TP=2 QUANT=fp8: --quantization fp8, weights quantised at load). Lhama: VLLM_BASE_URL_70B
set -euo pipefail
exec vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b-instruct \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --tensor-parallel-size "${TP:-4}" \
  ${QUANT:+--quantization "$QUANT"} \
  --max-model-len "${MAX_MODEL_LEN:-32768}" \
  --gpu-memory-utilization 0.92 \
  --enable-prefix-caching \
  ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"}
