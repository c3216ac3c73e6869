# Sourced by the device scripts of bench/experiments (run_s35*.sh, run_s36*.sh): the steps they
# share on the GPU machine, where each runs from the repository root with $OUT set (device tool).
#   device_setup PACK SUBDIR [DEVICE_FILE]   unpacks PACK (a carried .gpu/NAME.tar.gz of prebuilt
#       binaries and lib/libcudart.so.13) into B=/tmp/NAME, puts its lib/ on LD_LIBRARY_PATH, makes
#       R=$OUT/SUBDIR and writes the GPU's name, driver, clock and power limit to R/DEVICE_FILE
#       (device.txt); t0 is the start for the scripts' "at N s" lines.
#   cuda_checks DIR SPEC [SANITIZER_TIMEOUT]   DIR/trimix_tests_cuda (the whole CUDA suite), then
#       compute-sanitizer memcheck and racecheck on the Catch2 test spec SPEC (90 s each unless
#       given), then DIR/trianglemix_demo; logs in R, one summary line each on stdout.
#   pair_checks DIR   the pair-kernel tests alone of DIR/trimix_tests_cuda (band items, many items in
#       a row on one and three CTAs, the running max), memcheck on the band items, DIR/trianglemix_demo:
#       ~60 s, for a kernel change whose whole suite ran before in another build.
#   multicast_ab_checks NAME OFF SEQS LABEL=BIN...   a same-call A/B of the LABELs (2 rounds, triangle
#       and causal at SEQS, streaming at 16K one round; label OFF runs with TRIMIX_CUDA_MULTICAST=0),
#       back as OUT/NAME_ab.tar.gz, then B/tests' checks (cuda_checks on the band items and memcheck
#       on the many-items tests), back as OUT/NAME_checks.tar.gz; the checks are skipped where B has
#       no tests/ (run_s42a.sh, run_s42b.sh, run_s43a.sh).
#   pair_timeline NAME BIN MASKS [ARG...]   BIN's clock64 timeline (a TRIMIX_CUDA_PAIR_TIMELINE
#       build) of one call at 16K, bf16, MASKS (comma list), after its timed ones (ARGs: its other
#       options, e.g. --warmup-ms 100 --rep-ms 300); log in R/tl_NAME.log, bench/pair_timeline_summary.py's
#       summary in R/tl_NAME.txt, the raw stamps removed. Run-time switches go in front, as for
#       any command: TRIMIX_CUDA_PAIR_BOUND=nolone pair_timeline ...
t0=$SECONDS

device_setup() {
  local pack=$1
  B=/tmp/$(basename "$pack" .tar.gz) R=$OUT/$2
  mkdir -p "$B" "$R"
  tar xzf "$pack" -C "$B"
  export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee "$R/${3:-device.txt}"
}

cuda_checks() {
  local dir=$1 spec=$2 limit=${3:-90} tool
  timeout 150 "$dir/trimix_tests_cuda" > "$R/tests.log" 2>&1
  echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 "$R/tests.log"
  for tool in memcheck racecheck; do
    timeout "$limit" compute-sanitizer --tool $tool --error-exitcode 3 "$dir/trimix_tests_cuda" "$spec" > "$R/$tool.log" 2>&1
    echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -1 "$R/$tool.log"
  done
  timeout 30 "$dir/trianglemix_demo" > "$R/demo.log" 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" "$R/demo.log"
}

pair_checks() {
  local dir=$1
  timeout 25 "$dir/trimix_tests_cuda" "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*,the running max*" > "$R/tests.log" 2>&1
  echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 "$R/tests.log"
  timeout 30 compute-sanitizer --tool memcheck --error-exitcode 3 "$dir/trimix_tests_cuda" "tile-engine band items with the sink keys in another tile*" > "$R/memcheck.log" 2>&1
  echo "memcheck rc=$? at $((SECONDS - t0)) s"; tail -1 "$R/memcheck.log"
  timeout 10 "$dir/trianglemix_demo" > "$R/demo.log" 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" "$R/demo.log"
}

multicast_ab_checks() {
  local name=$1 off=$2 seqs=$3
  shift 3
  timeout 330 bash bench/ab_gpu.sh --out $R/ab --rounds 2 --timeout 60 --seq "$seqs" --masks triangle,causal \
    --no-serialized --env "$off:TRIMIX_CUDA_MULTICAST=0" "$@" > $R/ab.log 2>&1
  echo "ab rc=$? at $((SECONDS - t0)) s"; tail -6 $R/ab.log
  timeout 80 bash bench/ab_gpu.sh --out $R/ab_streaming --rounds 1 --timeout 30 --seq 16384 --masks streaming \
    --no-serialized --env "$off:TRIMIX_CUDA_MULTICAST=0" "$@" > $R/ab_streaming.log 2>&1
  echo "ab streaming rc=$? at $((SECONDS - t0)) s"; tail -3 $R/ab_streaming.log
  tar czf $OUT/${name}_ab.tar.gz -C $R . && rm -rf $R/*  # back even if the checks run out of time
  [ -x $B/tests/trimix_tests_cuda ] || { echo "no tests/ in the pack: checks not run"; return; }
  cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*" 60
  timeout 45 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/trimix_tests_cuda \
    "tile-engine: consumers that run many items in a row*" > $R/memcheck_many.log 2>&1
  echo "memcheck many rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck_many.log
  tar czf $OUT/${name}_checks.tar.gz -C $R . && rm -rf $R
  echo "all at $((SECONDS - t0)) s"
}

pair_timeline() {
  local name=$1 bin=$2 masks=$3 m files=()
  shift 3
  mkdir -p "$R/tl_$name"
  TRIMIX_TIMELINE_DIR=$R/tl_$name timeout 60 "$bin" --seq 16384 --masks "$masks" --dtypes bf16 "$@" > "$R/tl_$name.log" 2>&1
  echo "timeline $name rc=$? at $((SECONDS - t0)) s"
  for m in ${masks//,/ }; do files+=("$R/tl_$name/bf16_${m}_16384.bin"); done
  python3 bench/pair_timeline_summary.py "${files[@]}" > "$R/tl_$name.txt" 2>&1
  rm -rf "$R/tl_$name"
}
