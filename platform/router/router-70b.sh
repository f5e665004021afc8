#!/usr/bin/env bash
# A router in front of several replicas of one tier: vLLM production-stack's router
# (`pip install vllm-router`, or the lmcache/lmstack-router image) with session routing.
# Lhama sends the conversation id in the `x-lhama-conversation` header of every inference
# request, so every turn of a conversation reaches the replica that holds its prefix in
# the KV cache (a cold replica re-computes the whole history). Requests without the header
# (titles, token counts) go to the replica with the lowest load.
#
#   BACKENDS=http://gpu1:8000,http://gpu2:8000 MODEL=llama-3.1-70b-instruct ./router-70b.sh
#   Lhama: VLLM_BASE_URL_70B=http://ROUTER:8001/v1 (or the tier's base URL in the admin)
set -euo pipefail
: "${BACKENDS:?comma-separated vLLM base URLs without /v1}"
MODEL="${MODEL:-llama-3.1-70b-instruct}"
# --static-models takes one model name per backend.
MODELS="$(echo "$BACKENDS" | tr ',' '\n' | sed "s/.*/$MODEL/" | paste -sd, -)"
exec vllm-router \
  --host 0.0.0.0 --port "${PORT:-8001}" \
  --service-discovery static \
  --static-backends "$BACKENDS" \
  --static-models "$MODELS" \
  --routing-logic session \
  --session-key x-lhama-conversation
