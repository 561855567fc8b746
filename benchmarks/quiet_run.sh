#!/usr/bin/env bash
# The CPU tables for RESULTS.md in one go, on a quiet machine: every table in both harness modes
# (interleaved and blocks), wall clock, plus the end-to-end epochs; each script's output goes to
# OUT/<name>.txt (and its JSON to OUT/<name>.json).
# Usage: benchmarks/quiet_run.sh [OUT] [names...]   (default OUT benchmarks/out/quiet; names: all of
#        pooling pooling_nohp epochs epochs2 training lstm_lm conv lstm attention; and busy: the
#        busy-machine table, conv_noteams: the conv table with DEEPKERN_CONTENTION=off; conv_avx2,
#        lstm_avx2, attention_avx2: both libraries held to AVX2+FMA, the stand-in for a machine without
#        AVX-512: DEEPKERN_CPU_ISA=avx2, and ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA for PyTorch)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out/quiet}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(pooling pooling_nohp epochs epochs2 training lstm_lm conv lstm attention)
mkdir -p "$out"
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
run() {
  local name=$1
  shift
  echo "== $name: $* ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))" | tee "$out/$name.txt"
  python "$@" 2>&1 | tee -a "$out/$name.txt"
}
for n in "${names[@]}"; do
  case $n in
    pooling) run pooling benchmarks/bench_pooling.py --mode both --json "$out/pooling.json" ;;
    pooling_nohp) run pooling_nohp benchmarks/bench_pooling.py --mode both --no-hugepage --json "$out/pooling_nohp.json" ;;
    epochs) run epochs benchmarks/bench_epochs.py --mode both --threads 1 --json "$out/epochs.json" ;;
    epochs2) run epochs2 benchmarks/bench_epochs.py --mode both --threads 2 --json "$out/epochs2.json" ;;
    training) run training benchmarks/bench_training.py --mode both --json "$out/training.json" ;;
    lstm_lm) run lstm_lm benchmarks/bench_lstm_lm.py --mode both --json "$out/lstm_lm.json" ;;
    conv) run conv benchmarks/bench_conv.py --mode both --json "$out/conv.json" ;;
    lstm) run lstm benchmarks/bench_lstm.py --mode both --json "$out/lstm.json" ;;
    busy) run busy benchmarks/bench_busy.py --repeats 5 --variants default "contention detection off" \
      "OMP_WAIT_POLICY=PASSIVE" "1 thread" --json "$out/busy.json" ;;
    conv_noteams) DEEPKERN_CONTENTION=off run conv_noteams benchmarks/bench_conv.py --mode both \
      --json "$out/conv_noteams.json" ;;
    conv_avx2 | lstm_avx2 | attention_avx2)
      table=${n%_avx2}
      extra=()
      [ "$table" = attention ] && extra=(--no-memory --no-cpu-time)
      DEEPKERN_CPU_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
        run "$n" "benchmarks/bench_$table.py" --mode both "${extra[@]}" --json "$out/$n.json" ;;
    attention) run attention benchmarks/bench_attention.py --mode both --no-memory --no-cpu-time --json "$out/attention.json" ;;
    *) echo "quiet_run.sh: unknown table '$n'" >&2 ;;
  esac
done
echo "done $(date -u +%H:%M:%S) UTC; tables in $out/"
