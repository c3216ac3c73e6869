#!/usr/bin/env bash
# For the forty-sixth session's third call (~400 s cold): every peer against head at 16K-128K on an
# H200 (README's H200 table is f38ed71's), trimix timed both ways (in compare_gpu.py's process by
# do_bench, and attention_bench's host clock), two rounds in turns, under nvml_power.py: run_s46b.sh
# with SDPA flash in. (It ran on an H100: a call naming nvidia-h200 may get one.)
# Predicted (the H100 calls of this session, the H200's earlier 0.37-0.40x): triangle 0.36-0.39x
# Flex, causal 1.02-1.12x cuDNN.
#   bash bench/experiments/run_s46c.sh   (carry .gpu/s46.tar.gz, as run_s46a.sh); LIMIT=S (560)
NAME=s46c ROUNDS=2 SKIP= SEQS=${SEQS:-16384,32768,65536,131072} exec bash bench/experiments/run_s46b.sh
