#!/usr/bin/env bash
# Downloads Salesforce/blip-image-captioning-large from the Hugging Face hub into DIR, checks it,
# and only then puts it in place: DIR holds a complete model or is left as it was. (Installed by
# the Debian package as blip-captiond-fetch-model.)
#
#   download-model.sh [DIR]     (default: /var/lib/blip-captiond/model as root,
#                                ~/.cache/blip-captiond/blip-image-captioning-large otherwise)
#
# The files go to DIR.partial first (an interrupted download resumes from there); once every file
# is there and model.safetensors' header matches its size, an existing DIR is swapped out and
# removed. Uses `huggingface-cli download` when it is installed, plain curl otherwise. Set
# HF_ENDPOINT for a mirror, HF_TOKEN if your network requires it, and BLIP_MODEL_REVISION for
# another hub revision than the pinned one. Prints DIR on success; exits non-zero with the reason
# on failure (no network, incomplete file, wrong size), leaving no empty DIR behind.
set -euo pipefail
me=$(basename "$0")
case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "$me: unknown option $1 (usage: $me [DIR])" >&2; exit 64 ;;
esac
repo="Salesforce/blip-image-captioning-large"
# The revision whose files this script knows (docs/reference notes): its model.safetensors is
# 1,879,014,680 bytes, with the LM head stored untied.
pinned=353689b859fcf0523410b1806dace5fb46ecdf41
pinned_size=1879014680
revision="${BLIP_MODEL_REVISION:-$pinned}"
if [ "$(id -u)" -eq 0 ]; then default=/var/lib/blip-captiond/model; else default="$HOME/.cache/blip-captiond/blip-image-captioning-large"; fi
dir="${1:-$default}"
dir="${dir%/}"
work="$dir.partial"
endpoint="${HF_ENDPOINT:-https://huggingface.co}"
files=(config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json preprocessor_config.json)
parent=$(dirname "$dir")
made_parent=""
[ -d "$parent" ] || made_parent="$parent"
mkdir -p "$work"
# On failure keep what was fetched (the next run resumes) but no empty folder, not even the
# parent this run made (an offline first run leaves /var/lib/blip-captiond as it was).
trap 'find "$work" -maxdepth 1 -type f -empty -delete 2>/dev/null; rmdir "$work" 2>/dev/null; [ -z "$made_parent" ] || rmdir "$made_parent" 2>/dev/null || true' EXIT

if command -v huggingface-cli >/dev/null 2>&1; then
  huggingface-cli download "$repo" "${files[@]}" --revision "$revision" --local-dir "$work" >&2
elif command -v curl >/dev/null 2>&1; then
  auth=()
  [ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
  for f in "${files[@]}"; do
    [ -s "$work/$f" ] && [ "$f" != model.safetensors ] && continue
    echo "$me: fetching $f" >&2
    url="$endpoint/$repo/resolve/$revision/$f"
    if ! curl -fL --retry 3 --connect-timeout 15 -C - "${auth[@]}" -o "$work/$f.part" "$url"; then
      echo "$me: could not fetch $url (no network or blocked?); run again to resume" >&2
      exit 1
    fi
    mv "$work/$f.part" "$work/$f"
  done
else
  echo "$me: needs curl (apt install curl) or huggingface-cli" >&2
  exit 1
fi

# Checks: every file present and non-empty; the weights file's header is valid JSON whose tensors
# fit the file; at the pinned revision, the size the hub publishes.
for f in "${files[@]}"; do
  [ -s "$work/$f" ] || { echo "$me: $work/$f is missing or empty" >&2; exit 1; }
done
size=$(stat -c %s "$work/model.safetensors")
if [ "$revision" = "$pinned" ] && [ "$size" != "$pinned_size" ]; then
  echo "$me: $work/model.safetensors is $size bytes, the hub's is $pinned_size; delete it and run again" >&2
  exit 1
fi
if command -v python3 >/dev/null 2>&1; then
  python3 - "$work/model.safetensors" "$me" <<'PY' || { echo "$me: $work/model.safetensors is incomplete or corrupt; delete it and run again" >&2; exit 1; }
import json, os, struct, sys
path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    assert 0 < n < 100 << 20, "bad header length"
    header = json.loads(f.read(n))
end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
assert 8 + n + end == size, f"file is {size} bytes, header needs {8 + n + end}"
print(f"{os.path.basename(sys.argv[2])}: {len(header) - ('__metadata__' in header)} tensors, {size} bytes: ok", file=sys.stderr)
PY
fi
rm -rf "$work/.cache"  # huggingface-cli's bookkeeping
chmod -R a+rX "$work"

# Into place: the daemon (a dynamic user) reads it; a model already there is swapped out whole.
if [ -e "$dir" ]; then
  old="$dir.old.$$"
  mv "$dir" "$old"
  mv "$work" "$dir"
  rm -rf "$old"
else
  mv "$work" "$dir"
fi
trap - EXIT
echo "$dir"
