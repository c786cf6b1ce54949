#!/usr/bin/env bash
# Certify the Triton PASA kernel at levels 1, 2 and 3 in fp16-mixed and fp16-full on a GPU.
#
#   benchmarks/triton_certify.sh OUT_DIR [LEVELS]     (default LEVELS: "1 2 3")
#
# Writes OUT_DIR/<profile>-level<N>/certificate.{json,md} (and failures/) for each run, and
# OUT_DIR/summary.txt with each run's exit status. Needs a CUDA device, torch and triton
# (pasa-ref[triton]); run from the repository root. The declarations are the kernel's own
# (pasa_ref/gpu/triton_pasa_{mixed,full}.toml), passed with --declare where the CLI has it.
set -u
out=${1:?usage: benchmarks/triton_certify.sh OUT_DIR [LEVELS]}
levels=${2:-"1 2 3"}
mkdir -p "$out"
pasa=(python3 -m pasa_ref)
if "${pasa[@]}" certify --help | grep -q -- "--declare"; then declare_ok=1; else declare_ok=0; fi
: >"$out/summary.txt"
for variant in mixed full; do
  profile="fp16-$variant"
  for level in $levels; do
    args=(certify "pasa_ref.gpu.triton_pasa:certify_fp16_$variant" --profile "$profile"
          --level "$level" --out "$out/$profile-level$level" --quiet)
    if [ "$declare_ok" = 1 ]; then
      args+=(--declare "pasa_ref/gpu/triton_pasa_$variant.toml")
    fi
    (
      start=$(date +%s)
      "${pasa[@]}" "${args[@]}" >"$out/$profile-level$level.log" 2>&1
      status=$?
      echo "$profile level $level: exit $status, $(( $(date +%s) - start )) s," \
           "declare=$declare_ok" | tee -a "$out/summary.txt"
    ) &   # the runs are independent: all at once (level 3's hunts are CPU-bound)
  done
done
wait
