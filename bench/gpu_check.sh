#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and no internet, build llama-cpp-python with CUDA
# for this card only, run the standard scenario on both bundled models with every layer on the
# GPU, then on the CPU, and print load time, TTFT, decode tokens/s, peak VRAM (NVML) and the
# share of the bandwidth bound for each, and the GPU/CPU ratios. Goal: under 10 minutes, build
# included.
#
# Needs, prepared while online: .venv (make install) and the llama-cpp-python source, e.g.
#   .venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d bench/wheels
# Run: bash bench/gpu_check.sh     (the figures go to docs/performance.md by hand, with this command)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this is the GPU check" >&2; exit 2; }
sdist=$(ls bench/wheels/llama_cpp_python-0.3.36.tar.gz 2>/dev/null || true)
[ -n "$sdist" ] || { echo "bench/wheels/llama_cpp_python-0.3.36.tar.gz is missing (see the header)" >&2; exit 2; }
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1), sm_$cap"
start=$(date +%s)
# a copy of the environment, so the CPU build in .venv stays as it is
[ -d .venv-gpu ] || cp -a .venv .venv-gpu
CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$cap" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  .venv-gpu/bin/pip install --no-index --no-deps --force-reinstall "$sdist" -q
echo "build: $(( $(date +%s) - start )) s"
.venv-gpu/bin/python bench/gpu_report.py
echo "total: $(( $(date +%s) - start )) s"
