#!/usr/bin/env bash
# Replays a run under Compose with the job images (make images first).
#   scripts/replay.sh                      examples/acme against the emulator container (offline)
#   scripts/replay.sh run.yaml             that inputs file against the real services (ENV_FILE=...)
#   LAYOUT=paperspace scripts/replay.sh    each job on its own volumes, upstream ones read-only,
#                                          wired as workflows/paperspace/pipeline-workflow.yaml does
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
inputs=${1:-}
layout=${LAYOUT:-shared}
outputs=${OUTPUTS_DIR:-$repo/outputs}
keys=$outputs/.keys

if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
files=(-f docker/compose.yaml)
[ "$layout" = paperspace ] && files+=(-f docker/compose.paperspace.yaml)

# The jobs run as uid 65532: the bind-mounted tree must be theirs to write.
mkdir -p "$outputs" "$keys"
chmod 0777 "$outputs" "$keys"
if [ "$layout" = paperspace ]; then
  for volume in data vectors report receipt; do mkdir -p "$outputs/paperspace/$volume"; done
  chmod 0777 "$outputs/paperspace" "$outputs"/paperspace/*
fi
export OUTPUTS_DIR=$outputs KEYS_DIR=$keys

# Compose v1 ignores `pull_policy: never` and would try a registry for a missing image.
export IMAGE_TAG=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
images=(setup vectorize pipeline upload)
[ -z "$inputs" ] && images+=(emulator)
for name in "${images[@]}"; do
  docker image inspect "agent-readiness/$name:$IMAGE_TAG" >/dev/null 2>&1 \
    || { echo "replay: image agent-readiness/$name:$IMAGE_TAG is missing; run 'make images' first" >&2; exit 2; }
done

# `run` would restart containers a previous replay left behind, with that replay's inputs and
# mounts: start from none, and leave none.
cleanup() { "${compose[@]}" "${files[@]}" --profile offline down --remove-orphans >/dev/null 2>&1 || true; }
cleanup
trap cleanup EXIT

if [ -z "$inputs" ]; then
  export INPUTS=$repo/examples/acme/inputs.yaml
  rm -f "$keys/service-account.json"
  "${compose[@]}" "${files[@]}" --profile offline up -d emulator
  for _ in $(seq 1 100); do
    [ -s "$keys/service-account.json" ] && "${compose[@]}" "${files[@]}" logs emulator | grep -q final_folder_id= && break
    sleep 0.2
  done
  log=$("${compose[@]}" "${files[@]}" logs --no-color emulator)
  folder=$(sed -n 's/.*drive_folder_id=\([A-Za-z0-9_-]*\).*/\1/p' <<<"$log" | head -1)
  final=$(sed -n 's/.*final_folder_id=\([A-Za-z0-9_-]*\).*/\1/p' <<<"$log" | head -1)
  [ -n "$folder" ] && [ -n "$final" ] || { echo "replay: the emulator did not start:" >&2; echo "$log" >&2; exit 1; }
  env_file=$keys/replay.env
  { cat docker/offline.env; echo "GOOGLE_DRIVE_LINK=$folder"; echo "GDRIVE_FINAL_REPORT_FOLDER=$final"; } >"$env_file"
  export ENV_FILE=$env_file
  echo "replay: offline, against the emulator container (Drive folder $folder)"
else
  [ -f "$inputs" ] || { echo "replay: inputs file $inputs not found" >&2; exit 2; }
  [ -n "${ENV_FILE:-}" ] || { echo "replay: set ENV_FILE to a file with OPENAI_API_KEY, GDRIVE_CREDENTIALS_PATH=/keys/<key>.json, GDRIVE_FINAL_REPORT_FOLDER (and put the key file in $keys)" >&2; exit 2; }
  export INPUTS=$(cd "$(dirname "$inputs")" && pwd)/$(basename "$inputs")
  export ENV_FILE=$(cd "$(dirname "$ENV_FILE")" && pwd)/$(basename "$ENV_FILE")
fi

# `run` starts setup → vectorize → pipeline in order (service_completed_successfully), then upload.
"${compose[@]}" "${files[@]}" run --rm upload
echo "replay: done; outputs in $outputs"
