#!/usr/bin/env bash
# make demo: the whole pipeline, offline, on the example company (examples/acme).
#
# Builds the four jobs and the emulator, starts the emulator on a free port with examples/acme/drive
# seeded as a Google Drive folder, runs setup → vectorize → pipeline → upload as separate
# processes on one outputs tree exactly as a user would (flags and environment only), stops the
# emulator, and prints where the final report is. Nothing leaves this machine.
#
#   OUTPUTS=dir   outputs tree (default ./outputs)
#   PROFILE=release  build and run release binaries (default: debug, which builds much faster
#                    and shares its build with `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
outputs=${OUTPUTS:-$repo/outputs}
profile=${PROFILE:-debug}
inputs=$repo/examples/acme/inputs.yaml
seed=$repo/examples/acme/drive

say() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -f "$inputs" ] || fail "missing $inputs (the example company's profile)"
[ -d "$seed" ] || fail "missing $seed (the example company's documents)"

case $profile in
  debug) build_flags=() ;;
  release) build_flags=(--release) ;;
  *) fail "PROFILE must be debug or release, not $profile" ;;
esac
say "building the jobs and the emulator ($profile)"
# The whole workspace, as `make test` builds it: selecting packages would unify features
# differently and rebuild much of the tree.
cargo build "${build_flags[@]}" --workspace --bins
bin=$repo/target/$profile

work=$(mktemp -d)
emulator_pid=
stop_emulator() {
  if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  emulator_pid=
}
cleanup() {
  stop_emulator
  rm -rf "$work"
}
trap cleanup EXIT

started=$(date +%s)
"$bin/emulator" --port 0 --seed-drive "$seed" --final-folder "Final reports" \
  --write-service-account-key "$work/service-account.json" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
for _ in $(seq 1 200); do
  grep -q '^final_folder_id=' "$work/emulator.out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; fail "the emulator did not start"; }
  sleep 0.05
done
url=$(sed -n 1p "$work/emulator.out")
drive_folder=$(sed -n 's/^drive_folder_id=//p' "$work/emulator.out")
final_folder=$(sed -n 's/^final_folder_id=//p' "$work/emulator.out")
[ -n "$url" ] && [ -n "$drive_folder" ] && [ -n "$final_folder" ] \
  || { cat "$work/emulator.out" "$work/emulator.log" >&2; fail "the emulator did not print its URL and folder ids"; }
say "emulator at $url (offline: OpenAI, Google OAuth2 and Drive are emulated on this machine)"

# The environment a real run uses, pointed at the emulator. The key is the emulator's own
# throwaway service account; the OpenAI key is the emulator's test key.
export OPENAI_API_KEY=test-openai-key
export OPENAI_BASE_URL=$url/v1
export GOOGLE_API_BASE_URL=$url
export GDRIVE_CREDENTIALS_PATH=$work/service-account.json
export GDRIVE_FINAL_REPORT_FOLDER=$final_folder
unset RUN_ID COMPANY_NAME COMPANY_SLUG INPUTS_FILE GOOGLE_DRIVE_LINK OUTPUTS_ROOT INPUT_ROOTS

args=(--inputs-file "$inputs" --google-drive-link "$drive_folder" --outputs "$outputs")
for job in setup vectorize pipeline upload; do
  say "running $job"
  code=0
  "$bin/$job" "${args[@]}" || code=$?
  [ "$code" -eq 0 ] || { printf 'demo: %s failed (exit %s); see its error above\n' "$job" "$code" >&2; exit "$code"; }
done
stop_emulator
finished=$(date +%s)

cat <<EOF

demo: done in $((finished - started)) s, against the OFFLINE EMULATOR (no real OpenAI or Google
      service was called; the report's text is the emulator's deterministic stand-in for a model;
      the cost is computed from the price table and nothing was billed).
EOF
bash scripts/summary.sh "$outputs"
