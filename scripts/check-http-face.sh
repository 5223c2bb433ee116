#!/usr/bin/env bash
# The HTTP face against real clients: a real Prometheus (Debian's `prometheus`) scrapes the
# daemon's /metrics, and the real `openai` Python client (from PyPI, in scripts/test.sh's venv
# .build/test-venv, made here when missing) calls /v1/chat/completions on the tiny-a model. Prints
# what each saw; exits non-zero when something disagrees. Needs `swift build` first, and
# prometheus and curl (scripts/install-deps.sh --test).
#
#   scripts/check-http-face.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/debug
dir=$(mktemp -d /tmp/blip-http-face.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for tool in prometheus promtool curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool is not installed (scripts/install-deps.sh --test installs it)"; exit 1; }
done
venv=.build/test-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import openai' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/test-requirements.txt
fi

http_port=$(free_port)
OPENBLAS_NUM_THREADS=1 $bin/blip-captiond --model Tests/Fixtures/models/tiny-a --socket "$dir/blip.sock" \
    --http-listen "127.0.0.1:$http_port" 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null || { echo "FAIL: the daemon's HTTP face never became ready"; cat "$dir/daemon.log"; exit 1; }
echo "daemon: /readyz 200 on 127.0.0.1:$http_port"

prom_port=$(free_port)
cat > "$dir/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: blip-captiond
    static_configs: [{targets: ["127.0.0.1:$http_port"]}]
YAML
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)

# The openai client: a caption, the same caption through blip-caption --json, n=2, streaming, a refused URL.
"$venv/bin/python" - "$http_port" "$dir/blip.sock" <<'PY'
import base64, json, subprocess, sys
import openai
port, sock = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
image = "Tests/Fixtures/images/rocket.png"
url = "data:image/png;base64," + base64.b64encode(open(image, "rb").read()).decode()
def ask(**kw):
    return client.chat.completions.create(model="blip", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "a picture of"}]}], **kw)
reply = ask(temperature=0, max_tokens=10)
cli = json.loads(subprocess.check_output([".build/debug/blip-caption", "--socket", sock, "--json", "--prompt", "a picture of",
                                          "--num-beams", "1", "--max-new-tokens", "10", image]))
text = reply.choices[0].message.content
assert text == cli["candidates"][0]["text"], (text, cli)
print(f"openai: content {text!r} == blip-caption --json; finish_reason {reply.choices[0].finish_reason}; usage {reply.usage.completion_tokens}+{reply.usage.prompt_tokens}")
two = ask(n=2, max_tokens=8)
assert len(two.choices) == 2, two
print(f"openai: n=2 gave {len(two.choices)} choices: {[c.message.content for c in two.choices]}")
chunks = list(ask(temperature=0, max_tokens=10, stream=True))
pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
streamed = "".join(pieces)
assert streamed == text, (streamed, text)
# Greedy decoding streams as it generates: the prompt's words and the caption's come in several pieces.
assert len(pieces) >= 3, f"greedy streaming sent {len(pieces)} content pieces: {pieces}"
print(f"openai: greedy streaming gave {len(chunks)} chunks, {len(pieces)} content pieces {pieces}, content equal")
try:
    client.chat.completions.create(model="blip", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    raise SystemExit("FAIL: an http(s) image URL was accepted")
except openai.BadRequestError as error:
    print(f"openai: https image URL refused: 400 {error.message[:80]!r}")
PY

# promtool on what /metrics says, then Prometheus' own view after a few scrapes.
curl -sf "http://127.0.0.1:$http_port/metrics" > "$dir/metrics.txt"
if ! lint=$(promtool check metrics < "$dir/metrics.txt" 2>&1) || [ -n "$lint" ]; then echo "FAIL: promtool check metrics: $lint"; exit 1; fi
echo "promtool check metrics: nothing to report ($(grep -c '^blip_captiond_' "$dir/metrics.txt") samples)"
query() { curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")' || echo none; }
# Prometheus starts, then scrapes every second: wait (up to 30 s) until it has scraped after the calls.
for _ in $(seq 60); do
    up=$(query 'up{job="blip-captiond"}')
    captions=$(query 'sum(blip_captiond_requests_total{method="/blip.v1.Captioner/Caption",code="OK"})')
    [ "$up" = 1 ] && [ "$captions" = 4 ] && break
    sleep 0.5
done
echo "prometheus: up=$up, OK captions=$captions (made: the caption, the CLI's, n=2, streaming)"
[ "$up" = 1 ] || { echo "FAIL: Prometheus does not see the daemon up"; tail -5 "$dir/prometheus.log"; exit 1; }
[ "$captions" = 4 ] || { echo "FAIL: Prometheus counted $captions OK captions, expected 4"; exit 1; }
echo "PASS: the HTTP face with a real Prometheus and the openai client"
