#!/usr/bin/env bash
# Pro tier across two nodes of 8 GPUs each: Llama 3.1 405B Instruct FP8, tensor parallel 8
# inside each node (NVLink) x pipeline parallel 2 across the nodes, over a Ray cluster.
# Use it when one 8 x 80 GB node is too small for the context or concurrency you need
# (FP8 weights are ~410 GB: one node of 8 x 80 GB leaves little room for KV cache).
#
#   head node:    ROLE=head ./llama-3.1-405b-multinode.sh
#   second node:  ROLE=worker HEAD=10.0.0.1 ./llama-3.1-405b-multinode.sh
#
# Both nodes need the same vLLM version, the model in the same local path (or the same
# HF cache), and a fast interconnect (InfiniBand/RoCE: set NCCL_SOCKET_IFNAME/NCCL_IB_HCA
# to the right interfaces). Only the head node serves HTTP; Lhama: VLLM_BASE_URL_405B=http://HEAD:8000/v1
set -euo pipefail
RAY_PORT="${RAY_PORT:-6379}"
case "${ROLE:?set ROLE=head or ROLE=worker}" in
  head)
    ray start --head --port="$RAY_PORT" --num-gpus=8
    # Wait until the worker node's 8 GPUs joined (16 in all) before starting vLLM.
    until [ "$(ray status 2>/dev/null | grep -Eo '[0-9.]+/16.0 GPU' | wc -l)" -ge 1 ]; do sleep 5; done
    exec vllm serve meta-llama/Llama-3.1-405B-Instruct-FP8 \
      --served-model-name llama-3.1-405b-instruct \
      --host 0.0.0.0 --port "${PORT:-8000}" \
      --tensor-parallel-size 8 \
      --pipeline-parallel-size 2 \
      --distributed-executor-backend ray \
      --max-model-len "${MAX_MODEL_LEN:-131072}" \
      --gpu-memory-utilization 0.92 \
      --enable-prefix-caching \
      ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"}
    ;;
  worker)
    exec ray start --address="${HEAD:?set HEAD to the head node address}:$RAY_PORT" --num-gpus=8 --block
    ;;
  *) echo "ROLE must be head or worker" >&2; exit 2 ;;
esac
