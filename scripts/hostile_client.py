#!/usr/bin/env python3
"""A client that never reads (for scripts/soak.sh): connects to blip-captiond's socket, pipelines
Info requests and small raw-RGB Caption calls without reading a single answer, and reconnects
whenever the daemon disconnects it. Runs for SECONDS, then prints how often it was disconnected.

    scripts/hostile_client.py SOCKET SECONDS
"""
import socket
import struct
import sys
import time


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    return key + (varint(payload) if wire == 0 else varint(len(payload)) + payload)


def frame(call_id, method, payload=b""):
    envelope = field(1, 0, call_id) + field(2, 0, 1) + field(3, 2, method.encode())
    if payload:
        envelope += field(5, 2, payload)
    return struct.pack(">I", len(envelope)) + envelope


def caption_request():
    # CaptionRequest { image { data: 8x8 raw RGB, format RAW_RGB8 (3), width 8, height 8 }, options { num_beams 1, max_new_tokens 3 } }
    image = field(1, 2, bytes(range(192))) + field(2, 0, 3) + field(3, 0, 8) + field(4, 0, 8)
    options = field(1, 0, 1) + field(2, 0, 3)
    return field(1, 2, image) + field(3, 2, options)


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.time() + seconds
    disconnects, sent, call = 0, 0, 1
    caption = caption_request()
    while time.time() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.connect(path)
            s.settimeout(1.0)
            while time.time() < end:
                if call % 50 == 0:
                    s.sendall(frame(call, "/blip.v1.Captioner/Caption", caption))
                else:
                    s.sendall(frame(call, "/blip.v1.Captioner/Info"))
                call += 1
                sent += 1
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            disconnects += 1
            time.sleep(0.2)
        finally:
            s.close()
    print(f"hostile client: {sent} requests sent, never read; disconnected {disconnects} times")


if __name__ == "__main__":
    main()
