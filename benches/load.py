#!/usr/bin/env python3
"""Whole-stack load test: the same FHIR handler bare and behind fhirwall, driven by wrk.

Run through benches/load.sh (it builds the release binary first). Every figure is taken in
one run, the two sides alternating round by round, because the machines are shared and
absolute numbers are not comparable between runs: the ratios are what to read.

Writes benches/results/load.md (the table) and benches/results/load-layers.svg (what each
layer adds to a read). With `--handler store` the handler is the demo's in-memory FHIR server,
which looks up, searches and serialises on every request, and the files are load-store.md and
load-layers-store.svg.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "/fhir"

# name -> --layers value; the main table compares these with "bare".
SIDES = {
    "bare": "none",
    "stack": "audit,firewall,smart,limit,validate,redact",
    "stack+mtls": "all",
}
# The chart: layers added one at a time, in the stack's order.
LADDER = ["audit", "firewall", "identity", "smart", "limit", "validate", "redact"]

SCENARIOS = {
    "read": ("GET", BASE + "/Patient/pat-1", None),
    "search 50": ("GET", BASE + "/Observation?_count=50", None),
    "create": (
        "POST",
        BASE + "/Patient",
        '{"resourceType":"Patient","name":[{"family":"Load","given":["Test"]}],'
        '"gender":"female","birthDate":"1970-01-01"}',
    ),
}


def target_binary():
    if os.environ.get("LOAD_TARGET"):
        return os.environ["LOAD_TARGET"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    path = os.path.join(target, "release", "examples", "load_target")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run benches/load.sh, which builds it")
    return path


class Server:
    def __init__(self, binary, port, layers, workdir, handler):
        self.url = f"http://127.0.0.1:{port}"
        info = os.path.join(workdir, f"info-{port}.json")
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{port}", "--layers", layers, "--info", info,
             "--handler", handler],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "TMPDIR": workdir},
        )
        deadline = time.time() + 60
        while not os.path.exists(info) or os.path.getsize(info) == 0:
            if self.proc.poll() is not None:
                sys.exit(f"load_target --layers {layers} exited: {self.proc.stderr.read().decode()}")
            if time.time() > deadline:
                sys.exit(f"load_target --layers {layers} did not start")
            time.sleep(0.1)
        with open(info) as f:
            self.headers = json.load(f)
        # Wait until it answers.
        while True:
            try:
                urllib.request.urlopen(self.url + BASE + "/Patient/pat-1", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit(f"load_target --layers {layers} does not answer")
                time.sleep(0.1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def wrk(server, scenario, connections, seconds, workdir):
    method, path, body = SCENARIOS[scenario]
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in server.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if method == "POST":
        script = os.path.join(workdir, "post.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write(f"wrk.body = {json.dumps(body)}\n")
            f.write('wrk.headers["Content-Type"] = "application/fhir+json"\n')
        cmd += ["-s", script]
    cmd.append(server.url + path)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * UNITS[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        sys.exit(f"{scenario} on {server.url}: {non2xx.group(1)} refused responses; the stack "
                 f"refused the load itself, so the figures would be wrong:\n{out}")
    return rps, lat.get("50", float("nan")), lat.get("99", float("nan"))


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per figure")
    ap.add_argument("--connections", type=int, default=16, help="connections for throughput")
    ap.add_argument("--handler", choices=["canned", "store"], default="canned",
                    help="canned: bytes captured once (the stack's cost alone); store: the demo's "
                    "in-memory FHIR server answers each request (a realistic handler)")
    ap.add_argument("--no-chart", action="store_true",
                    help="skip the per-layer chart (its servers and runs)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    binary = target_binary()
    workdir = tempfile.mkdtemp(prefix="fhirwall-load-")
    servers = {}
    try:
        port = 18180
        for name, layers in SIDES.items():
            servers[name] = Server(binary, port, layers, workdir, args.handler)
            port += 1
        ladder = []
        for i in range(0 if args.no_chart else len(LADDER)):
            name = "+" + LADDER[i]
            servers[name] = Server(binary, port, ",".join(LADDER[: i + 1]), workdir, args.handler)
            ladder.append(name)
            port += 1

        results = {}  # (side, scenario) -> dict of lists
        for scenario in SCENARIOS:
            for r in range(args.rounds):
                for side in SIDES:
                    rps, _, _ = wrk(servers[side], scenario, args.connections, args.seconds, workdir)
                    _, p50, p99 = wrk(servers[side], scenario, 1, args.seconds, workdir)
                    entry = results.setdefault((side, scenario), {"rps": [], "p50": [], "p99": []})
                    entry["rps"].append(rps)
                    entry["p50"].append(p50)
                    entry["p99"].append(p99)
                    print(f"  {scenario:9} {side:10} round {r + 1}: {rps:9.0f} req/s  "
                          f"p50 {p50:7.0f} us  p99 {p99:7.0f} us", file=sys.stderr)

        chart = []
        for r in range(0 if args.no_chart else max(1, args.rounds - 1)):
            for name in ["bare"] + ladder:
                rps, _, _ = wrk(servers[name], "read", args.connections, args.seconds, workdir)
                chart.append((name, rps))
        ladder_rps = {name: median([v for n, v in chart if n == name]) for name in ["bare"] + ladder}
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    lines = []
    lines.append(f"handler: {args.handler}; wrk, {args.connections} connections for throughput and 1 for latency, "
                 f"{args.seconds} s per run, median of {args.rounds} alternating rounds; "
                 f"load average at the end: {os.getloadavg()[0]:.2f}")
    lines.append("")
    lines.append("| request | side | req/s | p50 µs | p99 µs | throughput vs bare | added p50 µs | added p99 µs |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario in SCENARIOS:
        bare = results[("bare", scenario)]
        b_rps, b50, b99 = median(bare["rps"]), median(bare["p50"]), median(bare["p99"])
        for side in SIDES:
            e = results[(side, scenario)]
            rps, p50, p99 = median(e["rps"]), median(e["p50"]), median(e["p99"])
            lines.append(f"| {scenario} | {side} | {rps:.0f} | {p50:.0f} | {p99:.0f} | "
                         f"{rps / b_rps:.2f} | {p50 - b50:+.0f} | {p99 - b99:+.0f} |")
    table = "\n".join(lines)
    print(table)

    results_dir = os.path.join(ROOT, "benches", "results")
    os.makedirs(results_dir, exist_ok=True)
    suffix = "" if args.handler == "canned" else "-" + args.handler
    with open(os.path.join(results_dir, f"load{suffix}.md"), "w") as f:
        f.write(table + "\n")
    if not args.no_chart:
        write_svg(ladder_rps, os.path.join(results_dir, f"load-layers{suffix}.svg"))
    return 0


def write_svg(ladder_rps, path):
    """A bar per stack, each adding one layer: the time per read in µs (1e6 / req/s)."""
    names = list(ladder_rps)
    micros = [1e6 / ladder_rps[n] if ladder_rps[n] else 0 for n in names]
    width, bar_h, left, top = 640, 22, 150, 40
    scale = (width - left - 90) / max(micros)
    height = top + len(names) * (bar_h + 8) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<text x="10" y="22" font-weight="bold">fhirwall: time per read as layers are '
           f'added (µs, wrk, same run)</text>']
    prev = None
    for i, (name, us) in enumerate(zip(names, micros)):
        y = top + i * (bar_h + 8)
        base_us = micros[0] if prev is None else prev
        label = "bare axum" if name == "bare" else name
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{min(base_us, us) * scale:.1f}" '
                   f'height="{bar_h}" fill="#8fb3d9"/>')
        if prev is not None and us > prev:
            out.append(f'<rect x="{left + prev * scale:.1f}" y="{y}" '
                       f'width="{(us - prev) * scale:.1f}" height="{bar_h}" fill="#d9822b"/>')
        delta = "" if prev is None else f" ({us - prev:+.1f})"
        out.append(f'<text x="{left + us * scale + 6:.1f}" y="{y + 16}">{us:.1f}{delta}</text>')
        prev = us
    out.append(f'<text x="10" y="{height - 10}" fill="#555">orange: what the layer on that '
               f'line adds to the one above (negative: noise)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
