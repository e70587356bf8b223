#!/usr/bin/env bash
# Builds the CUDA sidecar (gpu-agent/native/build/chutes-gpu-proof) with nvcc.
# `npm run gpu:build` runs this; without nvcc it says why and skips, so CI machines
# without the CUDA toolkit still pass. GPU_ARCHS overrides the target architectures.
set -euo pipefail
cd "$(dirname "$0")"
NVCC=${NVCC:-$(command -v nvcc || true)}
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [ -z "$NVCC" ]; then
  echo "gpu:build skipped: nvcc (the CUDA toolkit) is not installed on this machine"
  exit 0
fi
# Ampere (A100, sm_80), Ampere consumer (sm_86), Ada (L40S, RTX 4090, sm_89), Hopper (H100/H200, sm_90),
# plus PTX for newer GPUs to JIT.
ARCHS=${GPU_ARCHS:-"80 86 89 90"}
GENCODE=()
for arch in $ARCHS; do GENCODE+=(-gencode "arch=compute_${arch},code=sm_${arch}"); done
last=${ARCHS##* }
GENCODE+=(-gencode "arch=compute_${last},code=compute_${last}")
mkdir -p build
"$NVCC" -O3 -std=c++17 -Xcompiler -Wall "${GENCODE[@]}" -o build/chutes-gpu-proof chutes_gpu_proof.cu -ldl
echo "built $(pwd)/build/chutes-gpu-proof with $("$NVCC" --version | tail -n1) for sm_${ARCHS// /, sm_}"
