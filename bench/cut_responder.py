#!/usr/bin/env python3
"""A raw FastCGI responder for bench/cut_response.sh: it answers `200` with SIZE body bytes,
waits 200 ms (so the web server has passed the head on), then ends the response the way the
request path names, /<mode>/<framing>/<size>:

    clean     empty STDOUT + END_REQUEST{appStatus 0}: a complete response (the baseline)
    status1   empty STDOUT + END_REQUEST{appStatus 1}
    stderr    STDERR text, empty STDOUT + END_REQUEST{appStatus 1}
    close     close the connection (FIN), no END_REQUEST
    rst       SO_LINGER 0, then close (a TCP RST), no END_REQUEST
    unknown   an UNKNOWN_TYPE record (type 11, id 0), then close (what iiswsgi sends)
    badver    a STDOUT record with version byte 0, then close

    framing   chunked: no Content-Length; cl: Content-Length SIZE + 88

Usage: cut_responder.py unix:PATH | tcp:HOST:PORT
"""
import os
import socket
import struct
import sys
import threading
import time


def record(kind, rid, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, kind, rid, len(content), pad, 0) + content + b"\0" * pad


def end_request(rid, app_status):
    return record(6, rid) + record(3, rid, struct.pack(">IB3x", app_status, 0))


def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def pairs(data):
    out, i = {}, 0

    def length():
        nonlocal i
        if data[i] & 0x80:
            v = struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF
            i += 4
        else:
            v = data[i]
            i += 1
        return v

    while i < len(data):
        n, v = length(), length()
        out[data[i:i + n]] = data[i + n:i + n + v]
        i += n + v
    return out


def respond(s, rid, uri):
    parts = [p for p in uri.split("?")[0].split("/") if p]
    mode = parts[0] if parts else "clean"
    framing = parts[1] if len(parts) > 1 else "chunked"
    size = int(parts[2]) if len(parts) > 2 else 12
    head = b"Status: 200 OK\r\nContent-Type: text/plain\r\n"
    if framing == "cl":
        head += b"Content-Length: %d\r\n" % (size + 88)
    data = head + b"\r\n" + (b"hello world\n" * (size // 12 + 1))[:size]
    s.sendall(b"".join(record(6, rid, data[i:i + 65528]) for i in range(0, len(data), 65528)))
    if mode == "clean":
        s.sendall(end_request(rid, 0))
        return True
    time.sleep(0.2)
    if mode == "status1":
        s.sendall(end_request(rid, 1))
        return True
    if mode == "stderr":
        s.sendall(record(7, rid, b"the app failed\n") + end_request(rid, 1))
        return True
    if mode == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "unknown":
        s.sendall(record(11, 0, bytes([6]) + b"\0" * 7))
    elif mode == "badver":
        bad = bytearray(record(6, rid, b"x" * 8))
        bad[0] = 0
        s.sendall(bytes(bad))
    if mode != "rst":
        s.shutdown(socket.SHUT_WR)
    return False


def serve(s):
    params, keep = b"", False
    try:
        while True:
            header = read_exact(s, 8)
            if header is None:
                return
            _, kind, rid, clen, pad, _ = struct.unpack(">BBHHBB", header)
            body = read_exact(s, clen + pad)
            if body is None:
                return
            body = body[:clen]
            if kind == 1:
                keep, params = bool(body[2] & 1), b""
            elif kind == 4:
                params += body
            elif kind == 5 and clen == 0:
                env = pairs(params)
                uri = (env.get(b"REQUEST_URI") or env.get(b"PATH_INFO", b"/")).decode()
                if not respond(s, rid, uri) or not keep:
                    return
    except OSError:
        pass
    finally:
        s.close()


def main():
    addr = sys.argv[1]
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, int(port)))
    else:
        path = addr[len("unix:"):]
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        os.chmod(path, 0o666)
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
