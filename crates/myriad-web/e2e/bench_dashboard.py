"""Benchmarks of the dashboard (figures in BENCHMARKS.md, "Issue 16").

    python crates/myriad-web/e2e/bench_dashboard.py streaming --scenario scenarios/covid-nyc.toml --repeat 2
    python crates/myriad-web/e2e/bench_dashboard.py memory --runs 100
    python crates/myriad-web/e2e/bench_dashboard.py first-chart --repeat 5

streaming: the same scenario's stepping time (summary.json's run_seconds)
  run three ways: `myriad run`; started from the API with no page open; and
  started from the API with a page (Chromium) drawing its metrics live.
memory: the server's resident memory after listing N past runs.
first-chart: from navigation to the first chart drawn, for a finished run
  and for a live one.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("MYRIAD_BIN", str(ROOT / "target" / "release" / "myriad"))
CHROMIUM = os.environ.get("MYRIAD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]


def serve(runs):
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--runs", str(runs), "--scenarios", str(ROOT / "scenarios"),
                          "--threads", "2"], stdout=subprocess.PIPE, text=True)
    url = re.search(r"http://\S+/", p.stdout.readline()).group(0)
    return p, url


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def get(url):
    return json.load(urllib.request.urlopen(url))


def wait_done(url, run_id):
    while True:
        r = get(f"{url}api/runs/{run_id}")["run"]
        if r["status"] in ("finished", "interrupted", "failed"):
            return r
        time.sleep(0.2)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def streaming(args):
    from playwright.sync_api import sync_playwright
    scenario = Path(args.scenario)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        for k in range(args.repeat):
            out = Path(tmp) / f"cli-{k}"
            subprocess.run([BIN, "run", str(scenario), "--threads", "2", "-q", "--out", str(out)], check=True)
            cli = json.load(open(out / "summary.json"))["timing"]["run_seconds"]
            p, url = serve(runs)
            try:
                rid = post(f"{url}api/runs", {"scenario": scenario.name, "threads": 2})["id"]
                wait_done(url, rid)
                alone = json.load(open(runs / rid / "summary.json"))["timing"]["run_seconds"]
                with sync_playwright() as pw:
                    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                    page = b.new_page(viewport={"width": 1300, "height": 900})
                    rid = post(f"{url}api/runs", {"scenario": scenario.name, "threads": 2})["id"]
                    page.goto(f"{url}#/run/{rid}/metrics")
                    page.wait_for_function("document.querySelector('#run-status').textContent === 'finished'",
                                           timeout=0)
                    drawn = page.evaluate("run.series.steps.length")
                    b.close()
                watched = json.load(open(runs / rid / "summary.json"))["timing"]["run_seconds"]
            finally:
                p.send_signal(signal.SIGINT)
                p.wait()
            rows.append((cli, alone, watched, drawn))
            print(f"run {k}: myriad run {cli:.2f} s; served, no page {alone:.2f} s; served, page drawing "
                  f"{watched:.2f} s ({drawn} rows drawn)", flush=True)
    for i, name in ((0, "myriad run"), (1, "served, no page"), (2, "served, page open")):
        v = [r[i] for r in rows]
        print(f"{name}: {min(v):.2f}-{max(v):.2f} s stepping")


def memory(args):
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        for k in range(args.runs):
            subprocess.run([BIN, "run", str(ROOT / "scenarios" / "sir-small-world.toml"), "-q", "--threads", "2",
                            "--set", "population.size=2000", "--set", "steps=50", "--seed", str(k),
                            "--out", str(runs / f"run-{k:03d}")], check=True)
        p, url = serve(runs)
        try:
            before = rss_kb(p.pid)
            t = time.perf_counter()
            listed = get(f"{url}api/runs")
            took = time.perf_counter() - t
            for _ in range(20):
                get(f"{url}api/runs")
            after = rss_kb(p.pid)
            print(f"{len(listed)} runs listed in {took * 1000:.1f} ms; server resident memory {before / 1024:.1f} MB "
                  f"at start, {after / 1024:.1f} MB after listing 21 times")
        finally:
            p.send_signal(signal.SIGINT)
            p.wait()


def first_chart(args):
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        subprocess.run([BIN, "run", str(ROOT / "scenarios" / "sir-small-world.toml"), "-q", "--threads", "2",
                        "--out", str(runs / "past")], check=True)
        p, url = serve(runs)
        try:
            rid = post(f"{url}api/runs", {"scenario": "sir-small-world.toml", "paused": True,
                                          "set": ["steps=100000"]})["id"]
            with sync_playwright() as pw:
                b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for which, target in (("finished run", "past"), ("live run", rid)):
                    times = []
                    for _ in range(args.repeat):
                        page = b.new_page(viewport={"width": 1300, "height": 900})
                        page.goto(f"{url}#/run/{target}/metrics")
                        page.wait_for_function("window.myriadFirstChart !== undefined")
                        times.append(page.evaluate("window.myriadFirstChart"))
                        page.close()
                    print(f"{which}: first chart {min(times):.0f}-{max(times):.0f} ms after navigation "
                          f"({args.repeat} loads)")
                b.close()
        finally:
            p.send_signal(signal.SIGINT)
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("streaming")
    s.add_argument("--scenario", default=str(ROOT / "scenarios" / "covid-nyc.toml"))
    s.add_argument("--repeat", type=int, default=2)
    m = sub.add_parser("memory")
    m.add_argument("--runs", type=int, default=100)
    f = sub.add_parser("first-chart")
    f.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    {"streaming": streaming, "memory": memory, "first-chart": first_chart}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
