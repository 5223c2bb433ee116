#!/usr/bin/env python3
"""Caption images through blip-captiond's Unix socket, from the schema in proto/ alone.

The protobuf modules are generated at run time from proto/blip/v1/*.proto into a temporary
directory (nothing generated is committed), with `python -m grpc_tools.protoc` if grpcio-tools is
installed, else a `protoc` binary on PATH. The wire protocol is docs/protocol.md: each frame is a
4-byte big-endian length, then one serialized blip.v1.Envelope.

    python3 examples/python/caption.py photo.jpg [more.jpg ...] [--prompt "a picture of"]
"""

import argparse
import atexit
import importlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

DEFAULT_SOCKET = "/run/blip-captiond/blip-captiond.sock"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.path.join(HERE, "..", "..", "proto")
MAX_REPLY_BYTES = 64 << 20


def load_schema(proto_dir):
    """Generates the blip.v1 _pb2 modules into a temp dir and imports them."""
    out = tempfile.mkdtemp(prefix="blip-pb2-")
    atexit.register(shutil.rmtree, out, True)
    files = [os.path.join("blip", "v1", name) for name in ("envelope.proto", "captioner.proto", "health.proto")]
    args = [f"--proto_path={proto_dir}", f"--python_out={out}", *files]
    try:
        from grpc_tools import protoc  # pip install grpcio-tools
        status = protoc.main(["protoc", *args])
    except ImportError:
        if shutil.which("protoc") is None:
            sys.exit("caption.py: need protoc: `pip install grpcio-tools protobuf`, or "
                     "`apt-get install protobuf-compiler python3-protobuf`")
        status = subprocess.call(["protoc", *args], cwd=proto_dir)
    if status != 0:
        sys.exit(f"caption.py: protoc failed on {proto_dir} (status {status})")
    sys.path.insert(0, out)
    return (importlib.import_module("blip.v1.envelope_pb2"),
            importlib.import_module("blip.v1.captioner_pb2"),
            importlib.import_module("blip.v1.health_pb2"))


def read_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        data += chunk
    return bytes(data)


class Client:
    """One connection; calls run one at a time (a Swift client can pipeline them, see BLIPClient)."""

    def __init__(self, path, schema, timeout):
        self.envelope_pb2, self.captioner_pb2, self.health_pb2 = schema
        self.path = path
        self.timeout = timeout
        self.next_call_id = 1
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Our own deadline: a little longer than the one the daemon enforces (protocol §2.2).
        self.sock.settimeout(timeout + 1)
        self.sock.connect(path)

    def call(self, method, request, response_type):
        pb = self.envelope_pb2
        call_id = self.next_call_id
        self.next_call_id += 1
        envelope = pb.Envelope(call_id=call_id, kind=pb.FRAME_KIND_REQUEST, method=method,
                               timeout_us=int(self.timeout * 1_000_000),
                               payload=request.SerializeToString())
        body = envelope.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        while True:
            (length,) = struct.unpack(">I", read_exactly(self.sock, 4))
            if length > MAX_REPLY_BYTES:
                raise RuntimeError(f"reply frame of {length} bytes exceeds {MAX_REPLY_BYTES}")
            reply = pb.Envelope.FromString(read_exactly(self.sock, length))
            if reply.call_id in (0, call_id):
                break  # call id 0: an error about the whole connection (protocol §2.4)
        if reply.HasField("status") and reply.status.code != pb.OK:
            raise RuntimeError(f"{pb.StatusCode.Name(reply.status.code)}: {reply.status.message}")
        return response_type.FromString(reply.payload)

    def caption(self, image, prompt=None, num_beams=None, max_new_tokens=None, num_return_sequences=None):
        cp = self.captioner_pb2
        request = cp.CaptionRequest(image=cp.Image(data=image))
        if prompt is not None:
            request.prompt = prompt
        for field, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens),
                             ("num_return_sequences", num_return_sequences)):
            if value is not None:
                setattr(request.options, field, value)
        return self.call("/blip.v1.Captioner/Caption", request, cp.CaptionResponse)

    def health(self, service=""):
        hp = self.health_pb2
        response = self.call("/blip.v1.Health/Check", hp.HealthCheckRequest(service=service),
                             hp.HealthCheckResponse)
        return hp.HealthCheckResponse.ServingStatus.Name(response.status)


def main():
    parser = argparse.ArgumentParser(description="Caption images with blip-captiond.")
    parser.add_argument("images", nargs="*", help="JPEG or PNG files")
    parser.add_argument("--socket", default=os.environ.get("BLIP_CAPTIOND_SOCKET") or DEFAULT_SOCKET,
                        help="the daemon's socket (default: $BLIP_CAPTIOND_SOCKET or %(default)s)")
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR, help="the directory holding blip/v1/*.proto")
    parser.add_argument("--prompt", help='text the caption continues, e.g. "a picture of"')
    parser.add_argument("--num-beams", type=int)
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--num-return-sequences", type=int)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default %(default)s)")
    parser.add_argument("--health", action="store_true", help="print the daemon's serving status and exit")
    args = parser.parse_args()
    if not args.images and not args.health:
        parser.error("name at least one image, or pass --health")

    schema = load_schema(os.path.abspath(args.proto_dir))
    try:
        client = Client(args.socket, schema, args.timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        sys.exit(f"no daemon at {args.socket}: is blip-captiond.socket enabled? "
                 "(systemctl enable --now blip-captiond.socket)")
    except PermissionError:
        sys.exit(f"permission denied on {args.socket}: add yourself to group blip-caption")

    if args.health:
        print(client.health())
        return 0
    failures = 0
    for path in args.images:
        try:
            with open(path, "rb") as f:
                response = client.caption(f.read(), args.prompt, args.num_beams, args.max_new_tokens,
                                          args.num_return_sequences)
        except (OSError, RuntimeError, ConnectionError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failures += 1
            continue
        for candidate in response.candidates:
            print(f"{path}\t{candidate.score:.4f}\t{candidate.text}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
