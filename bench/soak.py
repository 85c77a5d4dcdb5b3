#!/usr/bin/env python3
"""soak - a bounded soak test of `gesso serve` (issue 16). Python 3 standard library only.

    python3 bench/soak.py GESSO_BINARY MODEL.safetensors [--jobs N] [--seconds S] [--seed K]
    (bash bench/soak.sh [JOBS] [SECONDS] builds gesso and runs this under nice -n 19)

One server on 127.0.0.1 (a free port, a temporary data directory, the SQLite store, 2 workers
of 1 thread, the tiny random model) takes N submissions (default 2000) with random valid
settings and a share of invalid ones, while:
  - a random share of the accepted jobs is cancelled, some at once (queued), some once running;
  - SSE readers and ?wait= long-polls follow random jobs, some dropped mid-stream;
  - every 2-5 s a random worker child is SIGKILLed (the supervisor restarts it), until 80% of
    the submissions are in: the last 20% run without kills, so a worker lives long enough
    for its memory to be judged;
  - the server's and the workers' RSS and open descriptors are sampled every 0.5 s.
Submitting stops at N or after S seconds (default 900), whichever comes first; then the queue
drains. Checks afterwards (each a PASS/FAIL line; the exit status is the number of FAILs):
  - every accepted job is in a terminal state (succeeded/failed/cancelled), the same one every
    watcher saw first, with one finished_ms; no job is missing and nothing else is stored;
  - a succeeded job's images are all fetchable PNGs of the job's size;
  - a job running on a killed worker ran again: attempts >= 2 (unless it ended before the kill);
  - invalid submissions got 4xx, valid ones 202 (never 5xx);
  - server RSS: median of the last quarter of the load's samples within 10% of the median of
    its second quarter (plus 2 MiB per store connection, SQLite's page-cache bound, unless
    --retention keeps jobs.db small); each worker alive through the kill-free tail: the same
    rule over its samples there; workers that lived 10 s settle at one descriptor count, and
    none ever holds more (nothing inherited from the server);
  - the server's open descriptors return to their idle count after warm-up once clients close;
  - no *.tmp file in results/, no file for a job the store lacks, the blob tally equals the
    bytes on disk, nothing left in the server's TMPDIR; jobs.db (+ WAL) per job reported;
  - a restart with --retention 1s purges every job with all its files.
"""
import argparse
import base64
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

SAMPLERS = ["dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2s_a", "euler_a", "euler", "lms",
            "heun", "dpm_2", "dpm_2_a", "dpm_fast", "dpm_adaptive", "ddim", "lcm"]
SCHEDULERS = ["default", "normal", "karras", "exponential", "sgm_uniform", "simple"]
OWN_TIMESTEPS = ("ddim", "lcm")  # no sigma schedule: the scheduler must be "default"
TERMINAL = ("succeeded", "failed", "cancelled")
WORDS = ("a lighthouse at dusk, (oil painting:1.2), [storm], cat dog tree BREAK red blue "
         "portrait landscape ünïcödé 灯台 (((detailed))) <lora:none:0.5>").split(" ")


def png(w, h, gray=False, rng=random):
    """A small PNG of random flat colour bands (8-bit RGB or grey)."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload +
                struct.pack(">I", zlib.crc32(kind + payload) & 0xffffffff))
    ch = 1 if gray else 3
    rows = []
    for y in range(h):
        v = bytes([rng.randrange(256) for _ in range(ch)]) if y % 8 == 0 else v
        rows.append(b"\x00" + v * w)
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if gray else 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_kinds(pid):
    kinds = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            k = t.split(":")[0] if ":" in t and not t.startswith("/") else t
            kinds[k] = kinds.get(k, 0) + 1
    except OSError:
        pass
    return kinds


def children(pid):
    """Worker children of pid (via /proc/PID/task/*/children), {pid: name}."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            kids = open(f"/proc/{pid}/task/{t}/children").read().split()
        except OSError:
            continue
        for k in kids:
            try:
                argv = open(f"/proc/{k}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"worker" in argv and b"--name" in argv:
                out[int(k)] = argv[argv.index(b"--name") + 1].decode()
    return out


def sqlite_memory(pid):
    """Bytes SQLite holds in the process (sqlite3_memory_used, called through gdb when it is
    installed): what of the server's RSS is SQLite's page caches. None without gdb."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                              "print ((long long (*)(void))sqlite3_memory_used)()"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("$1 = "):
            return int(line[5:])
    return None


def median(v):
    return statistics.median(v) if v else float("nan")


def quarter_rule(samples):
    """(second-quarter median, last-quarter median) of a list of values."""
    n = len(samples)
    if n < 8:
        return None
    return median(samples[n // 4:n // 2]), median(samples[3 * n // 4:])


class Soak:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.jobs = {}           # id -> dict(spec, size, batch, cancel, seen: [(status, fin)])
        self.order = []          # accepted ids in order
        self.invalid = {}        # case -> [status codes]
        self.valid_refused = []  # (status, body) of valid specs the server refused
        self.kills = []          # (t_ms, pid, name, [job ids running on it])
        self.sse = {"opened": 0, "completed": 0, "dropped": 0, "bad": []}
        self.polls = {"done": 0, "dropped": 0, "timeouts": 0}
        self.cancels = {"queued": 0, "running": 0, "replies": {}}
        self.fails = 0
        self.stop_load = threading.Event()
        self.stop_kills = threading.Event()
        self.stop_sample = threading.Event()
        self.server_rss = []     # (t, KiB) during the load
        self.worker_rss = {}     # pid -> [(t, KiB, calm)]
        self.worker_fds0 = {}    # pid -> [open descriptors at each sample]
        self.errors = []         # unexpected things seen by the drivers

    # ---- the server ----
    def start_server(self, retention=None):
        retention = retention or f"{self.a.retention}s"
        a = self.a
        os.makedirs(f"{a.tmp}/models", exist_ok=True)
        os.makedirs(f"{a.tmp}/tmpdir", exist_ok=True)
        link = f"{a.tmp}/models/tiny.safetensors"
        if not os.path.exists(link):
            os.symlink(os.path.abspath(a.model), link)
        port_file = f"{a.tmp}/port"
        if os.path.exists(port_file):
            os.unlink(port_file)
        env = dict(os.environ, TMPDIR=f"{a.tmp}/tmpdir")
        self.log = open(f"{a.tmp}/server.log", "a")
        self.srv = subprocess.Popen(
            [a.gesso, "serve", "--listen", "127.0.0.1:0", "--port-file", port_file, "--data",
             f"{a.tmp}/data", "--models", f"{a.tmp}/models", "--workers", "2", "--threads", "1",
             "--lease", "5", "--retention", retention, "--max-store-bytes", "0"],
            stderr=self.log, env=env)
        for _ in range(600):
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.port = int(open(port_file).read())
                try:
                    if self.get("/healthz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise SystemExit("the server did not start; see server.log")

    def stop_server(self):
        t0 = time.monotonic()
        kids = list(children(self.srv.pid))
        self.srv.send_signal(signal.SIGTERM)
        try:
            rc = self.srv.wait(30)
        except subprocess.TimeoutExpired:
            self.srv.kill()
            rc = self.srv.wait()
        left = [k for k in kids if os.path.exists(f"/proc/{k}")]
        return rc, time.monotonic() - t0, left

    # ---- HTTP ----
    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, path, timeout=60):
        return self.request("GET", path, timeout=timeout)

    def get_json(self, path, timeout=60):
        st, data = self.get(path, timeout)
        return st, (json.loads(data) if data[:1] == b"{" else None)

    def observe(self, jid, status, finished_ms):
        if status in TERMINAL:
            with self.lock:
                j = self.jobs.get(jid)
                if j is not None:
                    j["seen"].append((status, finished_ms))

    # ---- what is submitted ----
    def valid_spec(self, rng, long=False):
        w, h = rng.choice([64, 64, 64, 72, 80, 96, 128]), rng.choice([64, 64, 72, 96, 128])
        s = {"model": "tiny", "width": w, "height": h,
             "steps": rng.randint(12, 30) if long else rng.choice([1, 1, 2, 2, 3, 4, 6])}
        if rng.random() < 0.9:
            s["prompt"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.4:
            s["negative_prompt"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.7:
            s["sampler"] = rng.choice(SAMPLERS)
        if rng.random() < 0.5 and s.get("sampler") not in OWN_TIMESTEPS:
            s["scheduler"] = rng.choice(SCHEDULERS)
        if rng.random() < 0.5:
            s["cfg_scale"] = rng.choice([0, 1, 3.5, 7, 12, 30])
        r = rng.random()
        s["seed"] = (rng.randrange(2 ** 64) if r < 0.3 else -1 if r < 0.4 else
                     str(rng.randrange(2 ** 64)) if r < 0.5 else rng.randrange(2 ** 32))
        batch = rng.choice([1, 1, 1, 2])
        if batch > 1 or rng.random() < 0.2:
            s["batch_size"] = batch
        for key, lo, hi, p in (("clip_skip", 1, 2, 0.2), ("priority", -100, 100, 0.3),
                               ("preview_every", 0, 2, 0.3)):
            if rng.random() < p:
                s[key] = rng.randint(lo, hi)
        if rng.random() < 0.1:
            s["eta"] = rng.choice([0, 0.5, 1])
        out = (w, h)
        r = rng.random()
        if r < 0.12:  # img2img, sometimes inpainting
            s["init_image"] = base64.b64encode(png(w, h, rng=rng)).decode()
            s["strength"] = rng.choice([0.3, 0.75, 1])
            if rng.random() < 0.4:
                s["mask"] = base64.b64encode(png(w, h, gray=True, rng=rng)).decode()
                s["inpaint_fill"] = rng.choice(["original", "fill", "latent_noise",
                                                "latent_nothing"])
        elif r < 0.17 and not long:  # hires fix
            s["hires_scale"] = 1.5
            s["hires_steps"] = 1
            out = (int(w * 1.5) // 8 * 8, int(h * 1.5) // 8 * 8)
            if out[0] != int(w * 1.5) or out[1] != int(h * 1.5):
                del s["hires_scale"], s["hires_steps"]
                out = (w, h)
        return s, out, batch

    def invalid_body(self, rng):
        """(case name, body bytes or None for a raw-socket case)."""
        base = {"model": "tiny", "steps": 1, "width": 64, "height": 64}
        cases = [
            ("malformed", b'{"model":"tiny","steps":'),
            ("not_json", b"not json at all"),
            ("empty", b""),
            ("array", b'[{"model":"tiny"}]'),
            ("deep_nesting", b"[" * 5000 + b"]" * 5000),
            ("huge_width", {**base, "width": 1000000}),
            ("odd_size", {**base, "height": 65}),
            ("steps_zero", {**base, "steps": 0}),
            ("steps_huge", {**base, "steps": 5000}),
            ("unknown_sampler", {**base, "sampler": "no_such_sampler"}),
            ("unknown_scheduler", {**base, "scheduler": "sometimes"}),
            ("unknown_model", {**base, "model": "no-such-model"}),
            ("unknown_field", {**base, "colour": "blue"}),
            ("wrong_type", {**base, "prompt": 42}),
            ("fractional_seed", {**base, "seed": 1.5}),
            ("batch_too_big", {**base, "batch_size": 99}),
            ("prompt_too_long", {**base, "prompt": "x" * 20000}),
            ("not_base64", {**base, "init_image": "!!!not base64!!!"}),
            ("garbage_image", {**base, "init_image": base64.b64encode(os.urandom(300)).decode()}),
            ("truncated_png", {**base, "init_image": base64.b64encode(png(64, 64)[:60]).decode()}),
            ("mask_without_image", {**base, "mask": base64.b64encode(png(64, 64, True)).decode()}),
            ("bad_strength", {**base, "init_image": base64.b64encode(png(64, 64)).decode(),
                              "strength": 7}),
            ("too_large_announced", None),
            ("own_timesteps_with_scheduler", {**base, "sampler": rng.choice(OWN_TIMESTEPS),
                                              "scheduler": rng.choice(SCHEDULERS[1:])}),
            ("lcm_over_its_steps", {**base, "sampler": "lcm", "steps": rng.randint(51, 150)}),
        ]
        name, body = rng.choice(cases)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        return name, body

    def raw_too_large(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 300000000\r\n\r\n{")
            reply = s.recv(4096)
            return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else -1
        finally:
            s.close()

    # ---- drivers ----
    def submitter(self, k, n_total, counter, t_end, kill_stop_at):
        rng = random.Random(self.a.seed * 1000 + k)
        while not self.stop_load.is_set():
            with self.lock:
                if counter[0] >= n_total or time.monotonic() > t_end:
                    break
                counter[0] += 1
                n = counter[0]
                outstanding = sum(1 for j in self.order[-200:] if not self.jobs[j]["done"])
            if n >= kill_stop_at:
                self.stop_kills.set()
            while outstanding > 40 and not self.stop_load.is_set():  # a bounded queue
                time.sleep(0.05)
                with self.lock:
                    outstanding = sum(1 for j in self.order[-200:] if not self.jobs[j]["done"])
            if rng.random() < 0.12:
                name, body = self.invalid_body(rng)
                try:
                    st = (self.raw_too_large() if body is None else
                          self.request("POST", "/v1/jobs", body,
                                       {"Content-Type": "application/json"})[0])
                except OSError as e:
                    st = f"error {e}"
                with self.lock:
                    self.invalid.setdefault(name, []).append(st)
                continue
            cancel = None
            r = rng.random()
            if r < 0.05:
                cancel = "queued"
            elif r < 0.10:
                cancel = "running"
            spec, size, batch = self.valid_spec(rng, long=cancel == "running")
            try:
                st, data = self.request("POST", "/v1/jobs", json.dumps(spec).encode(),
                                        {"Content-Type": "application/json"})
            except OSError as e:
                st, data = -1, str(e).encode()
            if st != 202:
                with self.lock:
                    self.valid_refused.append((st, data[:200], {k: v for k, v in spec.items()
                                                                if k not in ("init_image", "mask")}))
                continue
            jid = json.loads(data)["id"]
            with self.lock:
                self.jobs[jid] = {"spec": spec, "size": size, "batch": batch, "cancel": cancel,
                                  "seen": [], "done": False, "t": time.monotonic()}
                self.order.append(jid)
            if cancel == "queued":
                self.cancel(jid, "queued")
            elif cancel == "running":
                threading.Thread(target=self.cancel_when_running, args=(jid,), daemon=True).start()

    def cancel(self, jid, kind):
        try:
            st, data = self.request("DELETE", f"/v1/jobs/{jid}")
        except OSError as e:
            st, data = -1, str(e).encode()
        with self.lock:
            self.cancels[kind] += 1
            key = f"{kind}:{st}"
            self.cancels["replies"][key] = self.cancels["replies"].get(key, 0) + 1

    def cancel_when_running(self, jid):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st, j = self.get_json(f"/v1/jobs/{jid}")
            if st != 200 or j["status"] in TERMINAL:
                break  # ended (or purged by --retention) before it was seen running
            if j["status"] == "running" and j["progress"]["step"] >= 1:
                break
            time.sleep(0.02)
        self.cancel(jid, "running")

    def pick(self, rng, unfinished=True):
        with self.lock:
            pool = [j for j in self.order[-60:] if not (unfinished and self.jobs[j]["done"])]
            return rng.choice(pool) if pool else None

    def sse_reader(self, k):
        rng = random.Random(self.a.seed * 7919 + k)
        while not self.stop_load.is_set():
            jid = self.pick(rng)
            if not jid:
                time.sleep(0.1)
                continue
            drop_after = rng.randint(0, 6) if rng.random() < 0.3 else None
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            events, terminal = [], []
            try:
                c.request("GET", f"/v1/jobs/{jid}/events")
                r = c.getresponse()
                with self.lock:
                    self.sse["opened"] += 1
                event = None
                while True:
                    line = r.readline()
                    if not line or self.stop_load.is_set():  # a keep-alive comes every 15 s
                        break
                    line = line.decode().rstrip("\r\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event:
                        events.append(event)
                        if event in TERMINAL:
                            terminal.append(event)
                        if drop_after is not None and len(events) >= drop_after:
                            break
                        event = None
                if drop_after is not None and len(events) >= drop_after and not terminal:
                    with self.lock:
                        self.sse["dropped"] += 1
                    c.sock.shutdown(socket.SHUT_RDWR)
                    continue
                if not terminal and self.stop_load.is_set():
                    continue  # the soak ended before the job did
                with self.lock:
                    if len(terminal) == 1 and events[-1] == terminal[0]:
                        self.sse["completed"] += 1
                    elif events and events[-1] == "stopping":
                        pass
                    else:
                        self.sse["bad"].append((jid, events[-8:]))
                if terminal:
                    self.observe(jid, terminal[0], None)
            except Exception as e:  # noted, never a silently dead driver
                with self.lock:
                    self.errors.append(f"sse {jid}: {e!r}")
            finally:
                c.close()

    def long_poller(self, k):
        rng = random.Random(self.a.seed * 104729 + k)
        while not self.stop_load.is_set():
            jid = self.pick(rng)
            if not jid:
                time.sleep(0.1)
                continue
            wait = rng.randint(1, 8)
            try:
                if rng.random() < 0.25:  # dropped while parked
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    s.sendall(f"GET /v1/jobs/{jid}?wait={wait} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                              .encode())
                    time.sleep(rng.uniform(0.05, 1.5))
                    s.close()
                    with self.lock:
                        self.polls["dropped"] += 1
                    continue
                st, j = self.get_json(f"/v1/jobs/{jid}?wait={wait}", timeout=wait + 30)
                with self.lock:
                    self.polls["done"] += 1
                if st == 200:
                    self.observe(jid, j["status"], j.get("finished_ms"))
            except Exception as e:  # noted, never a silently dead driver
                with self.lock:
                    self.errors.append(f"wait {jid}: {e!r}")

    def finisher(self):
        """Marks jobs done (bounding the queue and steering watchers), polling the list."""
        while not self.stop_load.is_set():
            try:
                for status in TERMINAL:
                    st, j = self.get_json(f"/v1/jobs?status={status}&limit=200")
                    for v in (j or {}).get("jobs", []):
                        with self.lock:
                            if v["id"] in self.jobs:
                                self.jobs[v["id"]]["done"] = True
                        self.observe(v["id"], v["status"], v["finished_ms"])
            except (OSError, http.client.HTTPException, ValueError) as e:
                with self.lock:
                    self.errors.append(f"list: {e!r}")
            time.sleep(0.3)

    def killer(self):
        rng = random.Random(self.a.seed * 31 + 1)
        db = f"file:{self.a.tmp}/data/jobs.db?mode=ro"
        while not self.stop_kills.is_set():
            if self.stop_kills.wait(rng.uniform(2, 5)):
                break
            kids = children(self.srv.pid)
            if not kids:
                continue
            pid = rng.choice(sorted(kids))
            name = kids[pid]
            running = []
            try:
                con = sqlite3.connect(db, uri=True, timeout=5)
                running = [r[0] for r in con.execute(
                    "SELECT id FROM jobs WHERE status='running' AND worker=?", (name,))]
                con.close()
            except sqlite3.Error as e:
                self.errors.append(f"killer db: {e}")
            t_ms = int(time.time() * 1000)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            with self.lock:
                self.kills.append((t_ms, pid, name, running))

    def sampler(self):
        t0 = time.monotonic()
        while not self.stop_sample.wait(0.5):
            t = time.monotonic() - t0
            r = rss_kib(self.srv.pid)
            if r:
                self.server_rss.append((t, r))
            calm = self.stop_kills.is_set()
            for pid in children(self.srv.pid):
                r = rss_kib(pid)
                self.worker_fds0.setdefault(pid, []).append(fd_count(pid))
                if r:
                    self.worker_rss.setdefault(pid, []).append((t, r, calm))

    # ---- checks ----
    def check(self, ok, what):
        print(f"  {'PASS' if ok else 'FAIL'}  {what}", flush=True)
        if not ok:
            self.fails += 1

    def run(self):
        a = self.a
        t_start = time.monotonic()
        self.start_server()
        print(f"server pid {self.srv.pid} on 127.0.0.1:{self.port}, data {a.tmp}/data", flush=True)
        # warm-up: every worker loads the model, then the idle baselines are taken
        warm = [json.loads(self.request("POST", "/v1/jobs", json.dumps(
            {"model": "tiny", "steps": 1, "width": 64, "height": 64}).encode())[1])["id"]
            for _ in range(4)]
        self._warm = warm
        for jid in warm:
            self.get(f"/v1/jobs/{jid}?wait=120")
        # each HTTP thread opens its own store connection on first use: touch them all
        burst = [threading.Thread(target=lambda: [self.get(f"/v1/jobs/{warm[0]}")
                                                  for _ in range(50)]) for _ in range(16)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        time.sleep(1)
        base_fds, base_kinds = fd_count(self.srv.pid), fd_kinds(self.srv.pid)
        rss0 = rss_kib(self.srv.pid)
        self.sql0 = sqlite_memory(self.srv.pid)
        wrss0 = {p: rss_kib(p) for p in children(self.srv.pid)}
        print(f"warm: server RSS {rss0} KiB, {base_fds} fds {base_kinds}; workers RSS "
              f"{wrss0} KiB", flush=True)

        counter = [0]
        t_end = time.monotonic() + a.seconds
        kill_stop_at = int(a.jobs * 0.8)
        threads = [threading.Thread(target=self.sampler, daemon=True),
                   threading.Thread(target=self.killer, daemon=True),
                   threading.Thread(target=self.finisher, daemon=True)]
        threads += [threading.Thread(target=self.sse_reader, args=(k,), daemon=True)
                    for k in range(6)]
        threads += [threading.Thread(target=self.long_poller, args=(k,), daemon=True)
                    for k in range(4)]
        subs = [threading.Thread(target=self.submitter,
                                 args=(k, a.jobs, counter, t_end, kill_stop_at), daemon=True)
                for k in range(3)]
        t_load = time.monotonic()
        for t in threads + subs:
            t.start()
        last = 0
        while any(t.is_alive() for t in subs):
            time.sleep(1)
            if time.monotonic() - last > 15:
                last = time.monotonic()
                with self.lock:
                    done = sum(1 for j in self.jobs.values() if j["done"])
                    print(f"  {time.monotonic() - t_load:5.0f} s: {counter[0]} submitted, "
                          f"{len(self.jobs)} accepted, {done} done, {len(self.kills)} kills, "
                          f"server RSS {rss_kib(self.srv.pid)} KiB", flush=True)
        self.stop_kills.set()
        # drain: wait for every accepted job to end (bounded)
        deadline = time.monotonic() + max(120, a.seconds // 2)
        pending = list(self.jobs)
        while pending and time.monotonic() < deadline:
            jid = pending[-1]
            st, j = self.get_json(f"/v1/jobs/{jid}?wait=10")
            if st == 404 and a.retention or st == 200 and j["status"] in TERMINAL:
                pending.pop()
        still = []
        for jid in pending:  # the drain waits on the newest first; what is left is counted
            st, j = self.get_json(f"/v1/jobs/{jid}")
            if not (st == 404 and a.retention or st == 200 and j["status"] in TERMINAL):
                still.append(jid)
        pending = still
        t_drained = time.monotonic()
        self.stop_load.set()
        join_by = time.monotonic() + 150  # SSE readers notice the stop at their next line
        for t in threads:
            if t is not threads[0]:
                t.join(max(0.1, join_by - time.monotonic()))
        self.stop_sample.set()
        threads[0].join()
        load_s = t_drained - t_load
        self.report(base_fds, base_kinds, rss0, wrss0, load_s, pending, counter[0])
        self.purge_phase()
        log = open(f"{self.a.tmp}/server.log", errors="replace").read()
        san = [line for line in log.splitlines()
               if "Sanitizer" in line or "runtime error:" in line]
        self.check(not san, f"no sanitizer report in server.log (a -DGESSO_SANITIZE=ON build "
                            f"reports leaks at each exit): {san[:3]}")
        print(f"total run time {time.monotonic() - t_start:.0f} s; {self.fails} check(s) failed",
              flush=True)
        return self.fails

    def report(self, base_fds, base_kinds, rss0, wrss0, load_s, pending, submitted):
        a = self.a
        ids = list(self.jobs)
        print(f"\nload: {submitted} submissions in {load_s:.0f} s: {len(ids)} accepted, "
              f"{sum(len(v) for v in self.invalid.values())} invalid, {len(self.kills)} workers "
              f"SIGKILLed ({sum(len(k[3]) for k in self.kills)} of them mid-job)", flush=True)
        print(f"cancels: {self.cancels['queued']} at once, {self.cancels['running']} once running;"
              f" replies {self.cancels['replies']}")
        print(f"SSE: {self.sse['opened']} streams, {self.sse['completed']} to their end, "
              f"{self.sse['dropped']} dropped mid-stream; long-polls: {self.polls['done']} "
              f"answered, {self.polls['dropped']} dropped while parked")
        print("checks:")
        # invalid submissions
        bad = {k: v for k, v in self.invalid.items()
               if not all(isinstance(s, int) and 400 <= s < 500 for s in v)}
        self.check(not bad, f"invalid submissions all 4xx ({sorted(self.invalid)} cases; "
                            f"wrong: {bad})")
        self.check(not self.valid_refused, f"valid submissions all 202 "
                                           f"(refused: {self.valid_refused[:3]})")
        self.check(not pending, f"every accepted job ended within the drain ({len(pending)} not)")
        # the store as the API sees it, and as the file holds it
        final = {}
        for jid in ids:
            st, j = self.get_json(f"/v1/jobs/{jid}")
            final[jid] = j if st == 200 else None
        # with --retention a job may be purged once it ended: then its end was seen before
        purged = [j for j in ids if final[j] is None and a.retention and self.jobs[j]["seen"]]
        missing = [j for j in ids if final[j] is None and j not in purged]
        self.check(not missing, f"no accepted job lost ({len(missing)} missing: {missing[:3]}; "
                                f"{len(purged)} purged by --retention after their end was seen)")
        states = {}
        for j in final.values():
            if j:
                states[j["status"]] = states.get(j["status"], 0) + 1
        nonterm = [i for i, j in final.items() if j and j["status"] not in TERMINAL]
        self.check(not nonterm, f"every job terminal: {states}")
        con = sqlite3.connect(f"file:{a.tmp}/data/jobs.db?mode=ro", uri=True)
        stored = {r[0]: r[1:] for r in con.execute(
            "SELECT id, status, attempts, finished_ms, error, worker FROM jobs")}
        con.close()
        extra = set(stored) - set(ids) - set(self.warm_ids())
        self.check(not extra, f"nothing stored but the accepted jobs ({len(stored)} rows, "
                              f"{len(extra)} unexplained)")
        changed = []
        for jid, j in final.items():
            if not j:
                continue
            for status, fin in self.jobs[jid]["seen"]:
                if status != j["status"] or (fin is not None and fin != j["finished_ms"]):
                    changed.append((jid, status, fin, j["status"], j["finished_ms"]))
        self.check(not changed, f"each job ended once: first terminal state seen = final state "
                                f"({sum(len(v['seen']) for v in self.jobs.values())} observations; "
                                f"{len(changed)} differ: {changed[:3]})")
        outcome = {}
        for jid, j in final.items():
            kind = self.jobs[jid]["cancel"]
            if kind and j:
                key = f"{kind}->{j['status']}"
                outcome[key] = outcome.get(key, 0) + 1
        print(f"  info  cancelled jobs' ends: {outcome} (a short job may end before its cancel)")
        self.check(not self.sse["bad"], f"each SSE stream read to its end had exactly one terminal"
                                        f" event, last ({len(self.sse['bad'])} not: "
                                        f"{self.sse['bad'][:2]})")
        # images
        n_img, wrong = 0, []
        for jid, j in final.items():
            if not j or j["status"] != "succeeded":
                continue
            meta = self.jobs[jid]
            if len(j["images"]) != meta["batch"]:
                wrong.append((jid, "count", len(j["images"])))
            for url in j["images"]:
                st, data = self.get(url)
                if st == 404 and a.retention and self.get(f"/v1/jobs/{jid}")[0] == 404:
                    break  # purged since
                n_img += 1
                if st != 200 or png_size(data) != meta["size"]:
                    wrong.append((jid, url, st, png_size(data) if st == 200 else None))
        self.check(not wrong, f"{n_img} images of succeeded jobs fetched, all PNGs of the job's "
                              f"size ({len(wrong)} wrong: {wrong[:3]})")
        # kills and attempts
        requeued, early, short = 0, 0, []
        for t_ms, pid, name, running in self.kills:
            for jid in running:
                j = final.get(jid)
                if not j:
                    continue
                if j["finished_ms"] and j["finished_ms"] <= t_ms:
                    early += 1
                elif j["attempts"] >= 2:
                    requeued += 1
                else:
                    short.append((jid, j["status"], j["attempts"], j["error"]))
        self.check(not short, f"jobs running on a killed worker ran again (attempts >= 2): "
                              f"{requeued}; ended just before the kill: {early}; "
                              f"not rerun: {len(short)} {short[:3]}")
        failed = {}
        for j in final.values():
            if j and j["status"] == "failed":
                failed[j["error"]] = failed.get(j["error"], 0) + 1
        odd = {e: n for e, n in failed.items() if "attempt" not in (e or "")}
        self.check(not odd, f"jobs failed only by losing their workers: {failed}")
        log = open(f"{a.tmp}/server.log").read().splitlines()
        died = sum(1 for line in log if "died of signal 9" in line)
        self.check(died == len(self.kills), f"server logged {died} worker deaths by SIGKILL for "
                                            f"{len(self.kills)} kills")
        errors = [line for line in log if " error " in line]
        print(f"  info  server log: {len(log)} lines, {len(errors)} at error level "
              f"{errors[:3]}; driver errors {len(self.errors)} {self.errors[:3]}")
        # memory
        load = [r for t, r in self.server_rss]
        q = quarter_rule(load)
        # SQLite caches up to 2 MiB of pages per connection (its default cache_size), one
        # connection per HTTP thread plus the main thread's: while jobs.db grows toward that,
        # so does the server. With --retention the store stays small and the rule is strict;
        # without, the caches' bound is allowed on top (bench/RESULTS.md, section 22).
        conns = sum(1 for fd in os.listdir(f"/proc/{self.srv.pid}/fd")
                    if os.readlink(f"/proc/{self.srv.pid}/fd/{fd}").endswith("/jobs.db"))
        cache = 0 if a.retention else conns * 2048
        ok = q is not None and q[1] <= q[0] * 1.10 + cache
        sql1 = sqlite_memory(self.srv.pid)
        if self.sql0 is not None and sql1 is not None:
            print(f"  info  SQLite's memory in the server (sqlite3_memory_used): "
                  f"{self.sql0 // 1024} KiB warm, {sql1 // 1024} KiB after the load "
                  f"(+{(sql1 - self.sql0) // 1024} KiB: its page caches, 2 MiB a connection at most)")
        self.check(ok, f"server RSS flat: {len(load)} samples, {rss0} KiB warm, second-quarter "
                       f"median {q[0] if q else '?'} KiB, last-quarter median "
                       f"{q[1] if q else '?'} KiB, max {max(load) if load else '?'} KiB, "
                       f"end {rss_kib(self.srv.pid)} KiB (rule: last <= second x 1.10 + {cache} KiB of "
                       f"SQLite page cache, {conns} connections x 2 MiB, when jobs.db grows)")
        calm = {p: [r for t, r, c in v if c] for p, v in self.worker_rss.items()}
        calm = {p: v for p, v in calm.items() if len(v) >= 16}
        for p, v in calm.items():
            q = quarter_rule(v)
            self.check(q[1] <= q[0] * 1.10, f"worker {p} RSS flat over the kill-free tail "
                                            f"({len(v)} samples): second-quarter median {q[0]} "
                                            f"KiB, last-quarter {q[1]} KiB, max {max(v)} KiB")
        if not calm:
            self.check(False, "no worker lived through 8 s of the kill-free tail")
        peaks = [max(r for t, r, c in v) for v in self.worker_rss.values()]
        print(f"  info  {len(self.worker_rss)} worker processes seen; warm RSS at start "
              f"{sorted(wrss0.values())} KiB; peak RSS per worker: median {median(peaks)} KiB, "
              f"max {max(peaks) if peaks else '?'} KiB")
        # a worker's descriptors once settled (the most common count over its samples, for
        # those that lived 10 s: one killed while starting has not opened its store yet);
        # none may ever hold more (a descriptor inherited from the server would show)
        settled, peak = {}, 0
        for pid, v in self.worker_fds0.items():
            v = [x for x in v if x is not None]
            peak = max([peak] + v)
            if len(v) >= 20:
                settled[pid] = max(set(v), key=v.count)
        counts = sorted(set(settled.values()))
        self.check(len(counts) == 1 and peak <= counts[0],
                   f"workers' descriptors: {counts} once settled over {len(settled)} workers that "
                   f"lived 10 s, at most {peak} in any of {len(self.worker_fds0)}")
        # descriptors back to the idle count
        end_fds = None
        for _ in range(60):
            end_fds = fd_count(self.srv.pid)
            if end_fds <= base_fds:
                break
            time.sleep(0.5)
        self.check(end_fds <= base_fds, f"server descriptors: {base_fds} idle after warm-up, "
                                        f"{end_fds} after the load {fd_kinds(self.srv.pid)}")
        # files
        res = f"{a.tmp}/data/results"
        names = os.listdir(res)
        tmps = [n for n in names if n.endswith(".tmp")]
        self.check(not tmps, f"no temporary files in results/ ({len(tmps)}: {tmps[:3]})")
        orphans = [n for n in names if n != ".tally" and n[:36] not in stored]
        self.check(not orphans, f"no file without a job ({len(orphans)}: {orphans[:3]})")
        on_disk = sum(os.path.getsize(f"{res}/{n}") for n in names if n != ".tally")
        tally = struct.unpack("<q", open(f"{res}/.tally", "rb").read(8))[0]
        # a worker killed between a put's rename and its tally update leaves the running
        # total off by that put (a preview replacing the last: a few bytes); each start
        # recounts it, which the purge phase checks
        print(f"  info  blob tally {tally} bytes, {on_disk} on disk ({len(names) - 1} files): "
              f"drift {tally - on_disk} bytes")
        left = os.listdir(f"{a.tmp}/tmpdir")
        self.check(not left, f"nothing left in the server's TMPDIR ({left[:3]})")
        db = os.path.getsize(f"{a.tmp}/data/jobs.db")
        wal = os.path.getsize(f"{a.tmp}/data/jobs.db-wal")
        per = db / max(1, len(stored), len(ids))  # purged rows leave pages for reuse
        self.check(per < 8192 and wal < 16 << 20,
                   f"jobs.db {db / 1e6:.2f} MB for {len(stored)} jobs: {per:.0f} bytes a job, "
                   f"WAL {wal / 1e6:.2f} MB (rule: under 8 KiB a job, WAL under 16 MiB: "
                   f"SQLite checkpoints it at 1000 pages)")
        self.final = final

    def warm_ids(self):
        return getattr(self, "_warm", [])

    def purge_phase(self):
        rc, secs, left = self.stop_server()
        self.check(rc == 0 and not left, f"SIGTERM: server exit {rc} in {secs:.1f} s, "
                                         f"workers left behind: {left}")
        self.start_server(retention="1s")
        t0 = time.monotonic()
        res = f"{self.a.tmp}/data/results"
        n = names = None
        while time.monotonic() < t0 + 120:  # rows go first, then the files one job at a time
            st, j = self.get_json("/v1/jobs?limit=5")
            n = len(j["jobs"]) if j else None
            names = [x for x in os.listdir(res) if x != ".tally"]
            if n == 0 and not names:
                break
            time.sleep(0.5)
        print(f"  info  the purge took {time.monotonic() - t0:.1f} s")
        tally = struct.unpack("<q", open(f"{res}/.tally", "rb").read(8))[0]
        self.check(n == 0 and not names and tally == 0,
                   f"restart with --retention 1s purged every job ({n} listed) and file "
                   f"({len(names)} left: {names[:3]}; tally {tally})")
        db = sum(os.path.getsize(f"{self.a.tmp}/data/{x}") for x in os.listdir(f"{self.a.tmp}/data")
                 if x.startswith("jobs.db"))
        print(f"  info  jobs.db with WAL after the purge: {db / 1e6:.2f} MB")
        rc, secs, left = self.stop_server()
        self.check(rc == 0 and not left, f"second SIGTERM: exit {rc} in {secs:.1f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("gesso")
    p.add_argument("model")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--seconds", type=int, default=900)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--retention", type=int, default=0,
                   help="the server's --retention in seconds during the load (0: keep all)")
    a = p.parse_args()
    a.tmp = tempfile.mkdtemp(prefix="gesso-soak-")
    s = Soak(a)
    try:
        fails = s.run()
    finally:
        if getattr(s, "srv", None) and s.srv.poll() is None:
            s.srv.kill()
            s.srv.wait()
        if not a.keep:
            subprocess.run(["rm", "-rf", a.tmp])
        else:
            print(f"kept {a.tmp}")
    sys.exit(min(fails, 100))


if __name__ == "__main__":
    main()
