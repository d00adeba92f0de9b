#!/usr/bin/env bash
# Runs the official Python SDKs against a live emulator: builds the binary, starts it on a free
# port, installs the SDKs into a throwaway venv and runs every emulator/sdk-tests/test_*.py
# with pytest. Extra pytest arguments are passed through (e.g. `-k openai`).
#
# Environment given to the tests:
#   EMULATOR_URL             http://127.0.0.1:PORT
#   OPENAI_BASE_URL          EMULATOR_URL/v1
#   OPENAI_API_KEY           the emulator's test key
#   GDRIVE_CREDENTIALS_PATH  a service account key file issued by the emulator
#   OPENAI_OPENAPI_SPEC      the published OpenAPI document, if present (else schema checks skip)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
spec="$repo/../shared/specs/openai-openapi.yaml"

work="$(mktemp -d)"
emulator_pid=""
cleanup() {
    if [[ -n "$emulator_pid" ]]; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "sdk-tests: building the emulator"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --workspace --bins
binary="$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/emulator"

api_key="test-openai-key"
"$binary" --port 0 --openai-api-key "$api_key" --file-processing-ms 100 \
    --write-service-account-key "$work/service-account.json" \
    >"$work/stdout" 2>"$work/stderr" &
emulator_pid=$!
for _ in $(seq 1 100); do
    [[ -s "$work/stdout" ]] && break
    sleep 0.1
done
url="$(head -n 1 "$work/stdout")"
if [[ "$url" != http://* ]]; then
    echo "sdk-tests: the emulator did not start:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
echo "sdk-tests: emulator at $url"

echo "sdk-tests: installing the SDKs into a throwaway venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

export EMULATOR_URL="$url"
export OPENAI_BASE_URL="$url/v1"
export OPENAI_API_KEY="$api_key"
export GDRIVE_CREDENTIALS_PATH="$work/service-account.json"
if [[ -f "$spec" ]]; then
    export OPENAI_OPENAPI_SPEC="$spec"
else
    echo "sdk-tests: $spec not found: validation against the OpenAPI schemas is SKIPPED"
fi

cd "$here"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" test_*.py
