#!/usr/bin/env bash
# Downloads a BLIP captioning model from the Hugging Face hub into DIR, checks it, and only then
# puts it in place: DIR holds a complete model or is left as it was. (Installed by the Debian
# package as blip-captiond-fetch-model.)
#
#   download-model.sh [--revision REV] [REPO] [DIR]
#
# REPO: Salesforce/blip-image-captioning-large (the default; "large" for short),
# Salesforce/blip-image-captioning-base ("base"), or any hub repository holding a
# BlipForConditionalGeneration checkpoint (a REPO is OWNER/NAME and not an existing path; write a
# relative DIR of that form as ./OWNER/NAME). DIR defaults to /var/lib/blip-captiond/model as root,
# ~/.cache/blip-captiond/NAME otherwise.
#
# large is pinned to a revision whose model.safetensors size is known and checked. base has no
# verified pin here: it is fetched at "main" (its pytorch_model.bin is checked for a complete zip
# directory) unless --revision or BLIP_MODEL_REVISION names one. Other repositories: --revision,
# else "main"; their model.safetensors is fetched, else their pytorch_model.bin.
# The files go to DIR.partial first (an interrupted download resumes from there); once every file
# is there and the weights file checks out, an existing DIR is swapped out and removed. Uses
# `huggingface-cli download` when it is installed, plain curl otherwise. Set HF_ENDPOINT for a
# mirror and HF_TOKEN if your network requires it. Prints DIR on success; exits non-zero with the
# reason on failure (no network, incomplete file, wrong size), leaving no empty DIR behind.
set -euo pipefail
me=$(basename "$0")
usage="usage: $me [--revision REV] [REPO] [DIR]"
revision_option=""
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --revision) [ $# -ge 2 ] || { echo "$me: --revision needs a value ($usage)" >&2; exit 64; }; revision_option=$2; shift 2 ;;
    --revision=*) revision_option=${1#--revision=}; shift ;;
    --) shift; positional+=("$@"); break ;;
    -*) echo "$me: unknown option $1 ($usage)" >&2; exit 64 ;;
    *) positional+=("$1"); shift ;;
  esac
done
repo="Salesforce/blip-image-captioning-large"
dir_arg=""
if [ ${#positional[@]} -gt 2 ]; then echo "$me: too many arguments ($usage)" >&2; exit 64; fi
if [ ${#positional[@]} -ge 1 ]; then
  first=${positional[0]}
  case "$first" in
    large) repo="Salesforce/blip-image-captioning-large"; positional=("${positional[@]:1}") ;;
    base) repo="Salesforce/blip-image-captioning-base"; positional=("${positional[@]:1}") ;;
    *)
      if [[ "$first" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] && [ ! -e "$first" ]; then
        repo=$first; positional=("${positional[@]:1}")
      fi ;;
  esac
fi
if [ ${#positional[@]} -gt 1 ]; then echo "$me: too many arguments ($usage)" >&2; exit 64; fi
[ ${#positional[@]} -eq 1 ] && dir_arg=${positional[0]}

# What this script knows of each repository: the pinned revision and its weights file's size.
pinned="" pinned_size="" weights=""
case "$repo" in
  Salesforce/blip-image-captioning-large)
    # The revision whose files this script knows (docs/reference notes): its model.safetensors is
    # 1,879,014,680 bytes, with the LM head stored untied.
    pinned=353689b859fcf0523410b1806dace5fb46ecdf41 pinned_size=1879014680 weights=model.safetensors ;;
  Salesforce/blip-image-captioning-base)
    # Its main branch holds pytorch_model.bin (and tf_model.h5), no model.safetensors. No revision
    # and size have been verified here: none is pinned (see docs/daemon.md, "Choosing a model").
    weights=pytorch_model.bin ;;
esac
revision="${revision_option:-${BLIP_MODEL_REVISION:-${pinned:-main}}}"
if [ "$(id -u)" -eq 0 ]; then default=/var/lib/blip-captiond/model; else default="$HOME/.cache/blip-captiond/${repo##*/}"; fi
dir="${dir_arg:-$default}"
dir="${dir%/}"
work="$dir.partial"
endpoint="${HF_ENDPOINT:-https://huggingface.co}"
files=(config.json vocab.txt tokenizer_config.json special_tokens_map.json preprocessor_config.json)
parent=$(dirname "$dir")
made_parent=""
[ -d "$parent" ] || made_parent="$parent"
mkdir -p "$work"
# On failure keep what was fetched (the next run resumes) but no empty folder, not even the
# parent this run made (an offline first run leaves /var/lib/blip-captiond as it was).
trap 'find "$work" -maxdepth 1 -type f -empty -delete 2>/dev/null; rmdir "$work" 2>/dev/null; [ -z "$made_parent" ] || rmdir "$made_parent" 2>/dev/null || true' EXIT
echo "$me: $repo at revision $revision" >&2

# fetch FILE: 0 when fetched, 2 when the hub has no such file, 1 on any other failure.
fetch() {
  local f=$1
  if command -v huggingface-cli >/dev/null 2>&1; then
    local out
    if out=$(huggingface-cli download "$repo" "$f" --revision "$revision" --local-dir "$work" 2>&1); then return 0; fi
    grep -qiE "EntryNotFound|404" <<<"$out" && return 2
    echo "$out" >&2
    return 1
  fi
  [ -s "$work/$f" ] && [ "$f" != "$weights" ] && return 0
  echo "$me: fetching $f" >&2
  local url="$endpoint/$repo/resolve/$revision/$f" auth=() code
  [ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
  code=$(curl -sSL --retry 3 --connect-timeout 15 -C - "${auth[@]}" -o "$work/$f.part" -w '%{http_code}' "$url") || code=${code:-000}
  case "$code" in
    200|206|416) mv "$work/$f.part" "$work/$f"; return 0 ;;
    404) rm -f "$work/$f.part"; return 2 ;;
    *) echo "$me: could not fetch $url (HTTP $code; no network or blocked?); run again to resume" >&2; return 1 ;;
  esac
}
command -v huggingface-cli >/dev/null 2>&1 || command -v curl >/dev/null 2>&1 \
  || { echo "$me: needs curl (apt install curl) or huggingface-cli" >&2; exit 1; }

for f in "${files[@]}"; do
  rc=0; fetch "$f" || rc=$?
  if [ $rc -eq 2 ]; then
    # A repository may carry tokenizer.json instead of vocab.txt, and omit the optional files.
    case "$f" in
      config.json) echo "$me: $repo has no config.json at $revision" >&2; exit 1 ;;
      vocab.txt) rc=0; fetch tokenizer.json || rc=$?
                 [ $rc -eq 0 ] || { echo "$me: $repo has neither vocab.txt nor tokenizer.json" >&2; exit 1; } ;;
      *) echo "$me: $repo has no $f, ignoring" >&2 ;;
    esac
  elif [ $rc -ne 0 ]; then exit 1; fi
done
if [ -z "$weights" ]; then
  for candidate in model.safetensors pytorch_model.bin; do
    rc=0; fetch "$candidate" || rc=$?
    [ $rc -eq 0 ] && { weights=$candidate; break; }
    [ $rc -eq 2 ] || exit 1
  done
  [ -n "$weights" ] || { echo "$me: $repo has neither model.safetensors nor pytorch_model.bin at $revision (a sharded checkpoint: use huggingface-cli download)" >&2; exit 1; }
else
  fetch "$weights" || { echo "$me: could not fetch $weights of $repo" >&2; exit 1; }
fi

# Checks: the weights file non-empty; at the pinned revision, the size the hub publishes; its
# structure: a safetensors header whose tensors fit the file, or a complete zip directory with
# stored entries and a data.pkl (torch.save's format).
[ -s "$work/$weights" ] || { echo "$me: $work/$weights is missing or empty" >&2; exit 1; }
size=$(stat -c %s "$work/$weights")
if [ -n "$pinned" ] && [ "$revision" = "$pinned" ] && [ "$size" != "$pinned_size" ]; then
  echo "$me: $work/$weights is $size bytes, the hub's is $pinned_size; delete it and run again" >&2
  exit 1
fi
if command -v python3 >/dev/null 2>&1; then
  python3 - "$work/$weights" "$me" <<'PY' || { echo "$me: $work/$weights is incomplete or corrupt; delete it and run again" >&2; exit 1; }
import json, os, struct, sys, zipfile
path, me = sys.argv[1], os.path.basename(sys.argv[2])
size = os.path.getsize(path)
if path.endswith(".safetensors"):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        assert 0 < n < 100 << 20, "bad header length"
        header = json.loads(f.read(n))
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert 8 + n + end == size, f"file is {size} bytes, header needs {8 + n + end}"
    count = len(header) - ("__metadata__" in header)
else:
    # Only the directory is read (zipfile never unpickles anything).
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        assert any(i.filename.endswith("/data.pkl") for i in infos), "no data.pkl: not a torch.save checkpoint"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos), "compressed entries"
        assert all(i.header_offset + i.file_size <= size for i in infos), "entries past the end"
    count = sum(1 for i in infos if "/data/" in i.filename)
    count = f"{count} storages"
print(f"{me}: {os.path.basename(path)}: {count} tensors, {size} bytes: ok" if isinstance(count, int)
      else f"{me}: {os.path.basename(path)}: {count}, {size} bytes: ok", file=sys.stderr)
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
