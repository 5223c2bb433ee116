#!/bin/sh
# Fails when the committed BlipProtoC sources differ from what proto/ generates.
# CI runs this; fix a failure with scripts/generate-proto.sh and commit the result.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT INT TERM

"$root/scripts/generate-proto.sh" "$fresh/BlipProtoC"

if ! diff -r "$root/Sources/BlipProtoC" "$fresh/BlipProtoC"; then
    echo "check-proto.sh: Sources/BlipProtoC is stale; run scripts/generate-proto.sh and commit the result" >&2
    exit 1
fi
echo "check-proto.sh: Sources/BlipProtoC matches proto/"
