#!/usr/bin/env python3
"""Times blip-captiond from process start to its systemd READY=1 notification.

    ready_time.py --binary .build/release/blip-captiond --model MODEL [--runs 3] [--warm-runs 1] \
                  [-- EXTRA DAEMON ARGS, e.g. --full-warm-up]

Each run binds an AF_UNIX datagram socket, starts the daemon with NOTIFY_SOCKET pointing at it and
--socket in a temporary directory, and measures from just before the spawn until a datagram with a
READY=1 line arrives (model load, socket bind and the warm-up caption all come before READY=1); then
it sends SIGTERM and waits for the exit. --warm-runs runs are made first and not counted, so the
weights are in the page cache. Prints JSON: {"ready_s": [...], "median_s": x, ...}, plus the
daemon's own "model loaded in" and "warm-up caption took" figures per run.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def one_run(binary, model, extra, directory, timeout):
    notify_path = os.path.join(directory, "notify.sock")
    daemon_socket = os.path.join(directory, "d.sock")
    log_path = os.path.join(directory, "daemon.log")
    for path in (notify_path, daemon_socket):
        if os.path.exists(path):
            os.unlink(path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    with open(log_path, "wb") as log:
        start = time.monotonic()
        process = subprocess.Popen([binary, "--model", model, "--socket", daemon_socket] + extra,
                                   env=env, stdout=subprocess.DEVNULL, stderr=log)
        ready = None
        try:
            while ready is None:
                left = start + timeout - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no READY=1 within {timeout} s")
                notify.settimeout(min(left, 0.5))
                try:
                    message = notify.recv(65536).decode("utf-8", "replace")
                except socket.timeout:
                    if process.poll() is not None:
                        raise RuntimeError(f"daemon exited with status {process.returncode} before READY=1")
                    continue
                if "READY=1" in message.split("\n"):
                    ready = time.monotonic() - start
        except RuntimeError as error:
            process.kill()
            process.wait()
            with open(log_path, errors="replace") as f:
                sys.exit(f"{error}; daemon log:\n{f.read()}")
        finally:
            notify.close()
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    with open(log_path, errors="replace") as f:
        text = f.read()
    def figure(pattern):
        match = re.search(pattern, text)
        return int(match.group(1)) if match else None
    return ready, figure(r"model loaded in (\d+) ms"), figure(r"warm-up caption took (\d+) ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=".build/release/blip-captiond")
    ap.add_argument("--model", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm-runs", type=int, default=1, help="uncounted runs first (warm page cache)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for READY=1")
    ap.add_argument("extra", nargs="*", help="daemon arguments, after --")
    args = ap.parse_args()
    ready, loaded, warm = [], [], []
    with tempfile.TemporaryDirectory(prefix="blip-ready-") as directory:
        for i in range(args.warm_runs + args.runs):
            r, l, w = one_run(args.binary, args.model, args.extra, directory, args.timeout)
            if i >= args.warm_runs:
                ready.append(round(r, 4))
                loaded.append(l)
                warm.append(w)
    print(json.dumps({
        "ready_s": ready,
        "median_s": round(statistics.median(ready), 4),
        "daemon_args": args.extra,
        "model_loaded_ms": loaded,
        "warm_up_ms": warm,
    }))


if __name__ == "__main__":
    main()
