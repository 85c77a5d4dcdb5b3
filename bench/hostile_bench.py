#!/usr/bin/env python3
"""hostile_bench - what hostile clients cost a running `gesso serve` (issue 19's figures).

    python3 bench/hostile_bench.py GESSO_BINARY MODEL.safetensors [--only NAME]
    GESSO_BENCH_STORE=postgresql:///gesso?host=/tmp/pg&port=5433 python3 bench/hostile_bench.py ...

Runs a real server on 127.0.0.1 per scenario and prints one line per figure:

  uploads   server RSS before / after 40 unauthenticated 25 MB uploads (keys on)
  slow      p50/p99 (ms) and failures of /healthz and of a job status read while 300
            sockets from 127.0.0.2 trickle a header line every 5 s
  lists     p50/p99 (ms) of GET /v1/jobs?limit=50 with 20 jobs holding 20 MB init images,
            and of a status read while four limit=1000 lists run

Run it against two builds on the same machine in one sitting and compare ratios.
"""
import base64
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

KEY = "bench-key-0123456789abcdef"


def known_flags(gesso):
    out = subprocess.run([gesso, "serve", "--help"], capture_output=True, text=True).stdout
    return {w for w in out.split() if w.startswith("--")}


def start(gesso, model, tmp, extra=()):
    """A server; flag/value pairs of extra that this build lacks are left out (older builds)."""
    flags, kept = known_flags(gesso), []
    for i in range(0, len(extra), 2):
        if extra[i] in flags:
            kept += extra[i:i + 2]
    extra = kept
    if os.environ.get("GESSO_BENCH_STORE"):  # e.g. a PostgreSQL URL
        extra += ["--store", os.environ["GESSO_BENCH_STORE"]]
    data, models, port_file = f"{tmp}/data", f"{tmp}/models", f"{tmp}/port"
    os.makedirs(models, exist_ok=True)
    link = f"{models}/tiny-sd15.safetensors"
    if not os.path.exists(link):
        os.symlink(os.path.abspath(model), link)
    if os.path.exists(port_file):
        os.unlink(port_file)
    log = open(f"{tmp}/server.log", "a")
    p = subprocess.Popen([gesso, "serve", "--listen", "127.0.0.1:0", "--port-file", port_file,
                          "--data", data, "--models", models, "--workers", "1", *extra],
                         stderr=log)
    for _ in range(600):
        if os.path.exists(port_file) and open(port_file).read().strip():
            port = int(open(port_file).read())
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                return p, port
            except OSError:
                pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit("the server did not start")


def stop(p):
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1


def timed_get(port, path, headers=None, timeout=5.0):
    """Milliseconds for a GET on a fresh connection, None on failure or timeout."""
    t0 = time.monotonic()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        urllib.request.urlopen(req, timeout=timeout).read()
    except Exception:
        return None
    return (time.monotonic() - t0) * 1000


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def summary(name, samples):
    ok = [s for s in samples if s is not None]
    fails = len(samples) - len(ok)
    print(f"  {name}: p50 {pct(ok, 0.5):.1f} ms, p99 {pct(ok, 0.99):.1f} ms, "
          f"{fails}/{len(samples)} failed or over 5 s", flush=True)


def submit(port, body, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/jobs", data=body, headers=h)
    return json.loads(urllib.request.urlopen(req, timeout=120).read())["id"]


def uploads(gesso, model, tmp):
    keys = f"{tmp}/keys"
    open(keys, "w").write(f"{KEY} bench\n")
    p, port = start(gesso, model, tmp, ["--api-keys", keys])
    before = rss_mb(p.pid)
    chunk = b"a" * (1 << 20)
    peak = before

    def upload():
        nonlocal peak
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 25165000\r\n\r\n")
            for _ in range(24):
                s.sendall(chunk)
            s.settimeout(30)
            s.recv(4096)
        except OSError:
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=upload) for _ in range(40)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(p.pid))
        time.sleep(0.02)
    after = rss_mb(p.pid)
    stop(p)
    print(f"uploads: server RSS {before:.0f} MB before, peak {peak:.0f} MB, after {after:.0f} MB "
          f"(+{peak - before:.0f} MB) with 40 unauthenticated 25 MB uploads", flush=True)


def slow(gesso, model, tmp, extra=()):
    p, port = start(gesso, model, tmp, list(extra))
    job = submit(port, b'{"model":"tiny-sd15","prompt":"x","steps":1,"width":64,"height":64}')
    socks = []
    for _ in range(300):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        try:
            s.send(b"GET /healthz HTTP/1.1\r\n")
        except OSError:
            pass
    health, status = [], []
    end = time.monotonic() + 15
    next_trickle = time.monotonic() + 5
    while time.monotonic() < end:
        if time.monotonic() >= next_trickle:
            for s in socks:
                try:
                    s.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            next_trickle += 5
        health.append(timed_get(port, "/healthz"))
        status.append(timed_get(port, f"/v1/jobs/{job}"))
        time.sleep(0.05)
    for s in socks:
        s.close()
    stop(p)
    label = " ".join(extra) or "defaults"
    print(f"slow ({label}): 300 sockets from 127.0.0.2 trickling headers", flush=True)
    summary("/healthz", health)
    summary("status read", status)


def png_with_chunk(size_mb):
    """A 64x64 grey PNG carrying size_mb MB in a private ancillary chunk."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload +
                struct.pack(">I", zlib.crc32(kind + payload) & 0xffffffff))
    raw = b"".join(b"\x00" + b"\x80" * 64 for _ in range(64))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)) +
            chunk(b"prVt", os.urandom(size_mb << 20)) + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


def lists(gesso, model, tmp):
    p, port = start(gesso, model, tmp, ["--max-body", "64M", "--max-image", "32M",
                                        "--max-body-memory", "256M", "--workers", "1"])
    img = base64.b64encode(png_with_chunk(15)).decode()
    ids = []
    for _ in range(20):
        body = json.dumps({"model": "tiny-sd15", "prompt": "x", "steps": 1, "width": 64,
                           "height": 64, "init_image": img, "strength": 0.5,
                           "priority": -100}).encode()
        ids.append(submit(port, body))
    listing = [timed_get(port, "/v1/jobs?limit=50", timeout=60) for _ in range(10)]
    busy = True

    def lister():
        while busy:
            timed_get(port, "/v1/jobs?limit=1000", timeout=120)

    threads = [threading.Thread(target=lister) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    status = [timed_get(port, f"/v1/jobs/{ids[i % 20]}", timeout=60) for i in range(20)]
    busy = False
    for t in threads:
        t.join()
    db = sum(os.path.getsize(f"{tmp}/data/{f}") for f in os.listdir(f"{tmp}/data")
             if f.startswith("jobs.db"))
    stop(p)
    print(f"lists: 20 jobs with 15 MB init images; jobs.db {db / 1e6:.1f} MB", flush=True)
    summary("GET /v1/jobs?limit=50", listing)
    summary("status read during 4 x limit=1000", status)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    gesso, model = sys.argv[1], sys.argv[2]
    only = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--only" else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    scenarios = [("uploads", lambda t: uploads(gesso, model, t)),
                 ("slow", lambda t: slow(gesso, model, t)),
                 ("slow-unbounded", lambda t: slow(gesso, model, t, ["--max-per-ip", "0"])),
                 ("lists", lambda t: lists(gesso, model, t))]
    for name, run in scenarios:
        if only and name != only:
            continue
        tmp = tempfile.mkdtemp(prefix="gesso-hostile-bench-")
        try:
            run(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
