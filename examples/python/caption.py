#!/usr/bin/env python3
"""Caption images through blip-captiond's Unix socket, from the schema in proto/ alone.

The protobuf modules are generated at run time from proto/blip/v1/*.proto into a temporary
directory (nothing generated is committed), with `python -m grpc_tools.protoc` if grpcio-tools is
installed, else a `protoc` binary on PATH. The wire protocol is docs/protocol.md: each frame is a
4-byte big-endian length, then one serialized blip.v1.Envelope.

    python3 examples/python/caption.py photo.jpg photos/ [--prompt "a picture of"] [--num-beams 5 ...]

Every decoding option of blip.v1.DecodingOptions is a flag (transformers' generate() names in kebab
case); unset ones take the daemon's defaults. Directories are walked recursively (links followed,
each real directory once, hidden names skipped). A connection the daemon closes (after a
connection-level error, or a restart) is reopened for the next image.
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
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png"}
# DecodingOptions' fields, as (flag type, help); the flag is the field in kebab case.
DECODING_OPTIONS = {
    "num_beams": (int, "beams for beam search; 1 = greedy (daemon default 3)"),
    "max_new_tokens": (int, "most tokens to generate, the final [SEP] included; overrides --max-length"),
    "min_new_tokens": (int, "fewest tokens to generate before [SEP] may end the caption"),
    "max_length": (int, "most tokens in the whole sequence, [DEC] and prompt included (default 20)"),
    "min_length": (int, "fewest tokens in the whole sequence (default 5)"),
    "length_penalty": (float, "beam score = log-prob sum / generated_tokens^length_penalty (default 1)"),
    "repetition_penalty": (float, "> 1 discourages tokens already in the sequence (default 1)"),
    "no_repeat_ngram_size": (int, "never repeat an n-gram of this size (default 0: off)"),
    "num_return_sequences": (int, "captions per image, best first"),
    "early_stopping": (bool, "stop beam search as soon as --num-beams captions are finished"),
    "do_sample": (bool, "sample instead of searching"),
    "temperature": (float, "sampling temperature > 0 (default 1)"),
    "top_k": (int, "sample among the k most likely tokens; 0 = all (default 50)"),
    "top_p": (float, "nucleus sampling threshold in (0, 1] (default 1)"),
    "seed": (int, "seed for sampling: the same seed gives the same captions"),
    "bad_words": (list, "a word or phrase never to generate; repeat for several"),
}


class DaemonError(Exception):
    """A non-OK status from the daemon; `connection_level` when it came with call id 0 (§2.4),
    after which the daemon closes the connection."""

    def __init__(self, code, message, connection_level=False):
        super().__init__(f"{code}: {message}" + (" (the daemon closed the connection)" if connection_level else ""))
        self.code = code
        self.connection_level = connection_level


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


def expand(paths):
    """Files as given; directories walked recursively (sorted, links followed with each real
    directory once, names starting with "." skipped) to their JPEG and PNG files."""
    images, walked = [], set()

    def walk(directory):
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in walked:
            return
        walked.add((info.st_dev, info.st_ino))
        for name in sorted(os.listdir(directory)):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                walk(path)
            elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                images.append(path)

    for path in paths:
        if os.path.isdir(path):
            before = len(images)
            walk(path)
            if len(images) == before:
                sys.exit(f"caption.py: {path} holds no .jpg, .jpeg or .png files")
        else:
            images.append(path)
    return images


class Client:
    """Calls run one at a time on one connection (a Swift client can pipeline them, see
    BLIPClient). The connection is opened on first use and again after the daemon closes it."""

    def __init__(self, path, schema, timeout):
        self.envelope_pb2, self.captioner_pb2, self.health_pb2 = schema
        self.path = path
        self.timeout = timeout
        self.next_call_id = 1
        self.sock = None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def connect(self):
        if self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # Our own deadline: a little longer than the one the daemon enforces (protocol §2.2).
            sock.settimeout(self.timeout + 1)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self.sock = sock
        return self.sock

    def read_envelope(self):
        (length,) = struct.unpack(">I", read_exactly(self.sock, 4))
        if length > MAX_REPLY_BYTES:
            raise ConnectionError(f"reply frame of {length} bytes exceeds {MAX_REPLY_BYTES}")
        return self.envelope_pb2.Envelope.FromString(read_exactly(self.sock, length))

    def connection_reason(self):
        """After a failed send: the call-id-0 response the daemon sent before closing, if any."""
        try:
            self.sock.settimeout(1)
            reply = self.read_envelope()
        except (OSError, ConnectionError, struct.error):
            return None
        return reply if reply.call_id == 0 else None

    def raise_for_status(self, reply):
        pb = self.envelope_pb2
        if reply.HasField("status") and reply.status.code != pb.OK:
            raise DaemonError(pb.StatusCode.Name(reply.status.code), reply.status.message, reply.call_id == 0)
        if reply.call_id == 0:
            raise DaemonError("UNKNOWN", "an OK response with call id 0", True)

    def call(self, method, request, response_type):
        pb = self.envelope_pb2
        call_id = self.next_call_id
        self.next_call_id += 1
        envelope = pb.Envelope(call_id=call_id, kind=pb.FRAME_KIND_REQUEST, method=method,
                               timeout_us=int(self.timeout * 1_000_000),
                               payload=request.SerializeToString())
        body = envelope.SerializeToString()
        sock = self.connect()
        try:
            try:
                sock.sendall(struct.pack(">I", len(body)) + body)
            except (BrokenPipeError, ConnectionResetError):
                # The daemon refused the frame (e.g. over its size limit) and closed: it said why
                # in a call-id-0 response that is still waiting to be read.
                reason = self.connection_reason()
                if reason is not None:
                    self.raise_for_status(reason)
                raise ConnectionError("the daemon closed the connection while the request was sent")
            while True:
                reply = self.read_envelope()
                if reply.call_id in (0, call_id):
                    break  # call id 0: an error about the whole connection (protocol §2.4)
            self.raise_for_status(reply)
            return response_type.FromString(reply.payload)
        except (DaemonError, OSError, ConnectionError) as error:
            if not isinstance(error, DaemonError) or error.connection_level:
                self.close()  # the next call opens a new connection
            raise

    def caption(self, image, prompt=None, options=None, apply_exif_orientation=None):
        cp = self.captioner_pb2
        request = cp.CaptionRequest(image=cp.Image(data=image))
        if apply_exif_orientation is not None:
            request.image.apply_exif_orientation = apply_exif_orientation
        if prompt is not None:
            request.prompt = prompt
        for field, value in (options or {}).items():
            if value is None or value is False or value == []:
                continue
            if isinstance(value, list):
                getattr(request.options, field).extend(value)
            else:
                setattr(request.options, field, value)
        return self.call("/blip.v1.Captioner/Caption", request, cp.CaptionResponse)

    def health(self, service=""):
        hp = self.health_pb2
        response = self.call("/blip.v1.Health/Check", hp.HealthCheckRequest(service=service),
                             hp.HealthCheckResponse)
        return hp.HealthCheckResponse.ServingStatus.Name(response.status)


def no_daemon_hint(path):
    if path == DEFAULT_SOCKET:
        return f"no daemon at {path}: is blip-captiond.socket enabled? (systemctl enable --now blip-captiond.socket)"
    return f"no daemon at {path}: nothing listens there; check the path, or start one there (blip-captiond --socket {path})"


def main():
    parser = argparse.ArgumentParser(description="Caption images with blip-captiond.")
    parser.add_argument("images", nargs="*", help="JPEG or PNG files, or directories")
    parser.add_argument("--socket", default=os.environ.get("BLIP_CAPTIOND_SOCKET") or DEFAULT_SOCKET,
                        help="the daemon's socket (default: $BLIP_CAPTIOND_SOCKET or %(default)s)")
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR, help="the directory holding blip/v1/*.proto")
    parser.add_argument("--prompt", help='text the caption continues, e.g. "a picture of"')
    decoding = parser.add_argument_group("decoding (transformers' generate() names; unset = the daemon's defaults)")
    for field, (kind, help_text) in DECODING_OPTIONS.items():
        flag = "--" + field.replace("_", "-")
        if kind is bool:
            decoding.add_argument(flag, action="store_true", help=help_text)
        elif kind is list:
            decoding.add_argument(flag, action="append", default=[], metavar="TEXT", help=help_text)
        else:
            decoding.add_argument(flag, type=kind, help=help_text)
    parser.add_argument("--no-exif", action="store_true", help="do not apply the EXIF orientation (transformers ignores it)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default %(default)s)")
    parser.add_argument("--health", action="store_true", help="print the daemon's serving status and exit")
    args = parser.parse_args()
    if not args.images and not args.health:
        parser.error("name at least one image, or pass --health")

    schema = load_schema(os.path.abspath(args.proto_dir))
    client = Client(args.socket, schema, args.timeout)
    try:
        client.connect()
    except (FileNotFoundError, ConnectionRefusedError):
        sys.exit(no_daemon_hint(args.socket))
    except PermissionError:
        group = None
        try:
            import grp
            group = grp.getgrgid(os.stat(args.socket).st_gid).gr_name
        except (OSError, KeyError):
            pass
        sys.exit(f"permission denied on {args.socket}: "
                 + (f"its group is {group}; add yourself to it (usermod -aG {group} $USER)" if group else "ask its owner for access"))

    if args.health:
        print(client.health())
        return 0
    options = {field: getattr(args, field) for field in DECODING_OPTIONS}
    failures = 0
    for path in expand(args.images):
        try:
            with open(path, "rb") as f:
                image = f.read()
        except OSError as error:
            print(f"{path}: {error}", file=sys.stderr)
            failures += 1
            continue
        try:
            response = client.caption(image, args.prompt, options, False if args.no_exif else None)
        except (FileNotFoundError, ConnectionRefusedError):
            sys.exit(no_daemon_hint(args.socket))  # reconnecting found no daemon: every image would fail
        except (OSError, DaemonError, ConnectionError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failures += 1
            continue
        for candidate in response.candidates:
            print(f"{path}\t{candidate.score:.4f}\t{candidate.text}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
