#!/usr/bin/env bash
# Downloads Salesforce/blip-image-captioning-large from the Hugging Face hub into DIR and checks it.
#
#   scripts/download-model.sh [DIR]     (default: /var/lib/blip-captiond/model as root,
#                                        ~/.cache/blip-captiond/blip-image-captioning-large otherwise)
#
# Uses `huggingface-cli download` when it is installed, plain curl otherwise. Set HF_ENDPOINT for a
# mirror and HF_TOKEN if your network requires it. Prints the folder on success; exits non-zero
# with the reason on failure (no network, incomplete file, wrong size).
set -euo pipefail
repo="Salesforce/blip-image-captioning-large"
if [ "$(id -u)" -eq 0 ]; then default=/var/lib/blip-captiond/model; else default="$HOME/.cache/blip-captiond/blip-image-captioning-large"; fi
dir="${1:-$default}"
endpoint="${HF_ENDPOINT:-https://huggingface.co}"
files=(config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json preprocessor_config.json)
mkdir -p "$dir"

if command -v huggingface-cli >/dev/null 2>&1; then
  huggingface-cli download "$repo" "${files[@]}" --local-dir "$dir" >&2
else
  auth=()
  [ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
  for f in "${files[@]}"; do
    [ -s "$dir/$f" ] && [ "$f" != model.safetensors ] && continue
    echo "download-model: fetching $f" >&2
    if ! curl -fL --retry 3 --connect-timeout 15 -C - "${auth[@]}" -o "$dir/$f.part" "$endpoint/$repo/resolve/main/$f"; then
      echo "download-model: could not fetch $endpoint/$repo/resolve/main/$f (no network or blocked?)" >&2
      exit 1
    fi
    mv "$dir/$f.part" "$dir/$f"
  done
fi

# Checks: every file present and non-empty; the weights file's header is valid JSON whose tensors fit the file.
for f in "${files[@]}"; do
  [ -s "$dir/$f" ] || { echo "download-model: $dir/$f is missing or empty" >&2; exit 1; }
done
python3 - "$dir/model.safetensors" <<'PY' || { echo "download-model: $dir/model.safetensors is incomplete or corrupt; delete it and run again" >&2; exit 1; }
import json, os, struct, sys
path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    assert 0 < n < 100 << 20, "bad header length"
    header = json.loads(f.read(n))
end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
assert 8 + n + end == size, f"file is {size} bytes, header needs {8 + n + end}"
print(f"download-model: {len(header) - ('__metadata__' in header)} tensors, {size} bytes: ok", file=sys.stderr)
PY
echo "$dir"
