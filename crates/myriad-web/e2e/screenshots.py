"""The screenshots of docs/dashboard.md and the README, made in Chromium
against `myriad serve`:

    MYRIAD_MODEL_DIR=target/models python crates/myriad-web/e2e/screenshots.py docs

The LLM view runs covid-llm-staten-island on the embedded model (pulled
with `myriad llm pull`).
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import bench_dashboard as bd  # noqa: E402

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")


def start(url, scenario, sets=(), paused=False, out=None):
    body = {"scenario": scenario, "set": list(sets), "paused": paused, "threads": 2}
    if out:
        body["out"] = out
    return bd.post(f"{url}api/runs", body)["id"]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        for name, scen, sets in (("sir-small-world", "sir-small-world.toml", []),
                                 ("seir-well-mixed", "seir-well-mixed.toml", [])):
            subprocess.run([bd.BIN, "run", str(bd.ROOT / "scenarios" / scen), "-q", "--threads", "2",
                            "--out", str(runs / name)] + sum((["--set", s] for s in sets), []), check=True)
        p, url = bd.serve(runs)
        try:
            with sync_playwright() as pw:
                b = pw.chromium.launch(executable_path=bd.CHROMIUM, args=bd.ARGS)
                page = b.new_page(viewport={"width": 1300, "height": 860})
                city = start(url, "covid-nyc-fitted.toml", [], out="covid-nyc-fitted")
                bd.wait_done(url, city)
                page.goto(url)
                page.locator("#runs-table input[data-id=sir-small-world]").check()
                page.locator("#runs-table input[data-id=seir-well-mixed]").check()
                page.wait_for_timeout(800)
                page.select_option("#compare-metric", "I")
                page.wait_for_timeout(300)
                page.screenshot(path=str(OUT / "dashboard-runs.png"))

                page.goto(f"{url}#/run/{city}/metrics")
                page.wait_for_function("window.myriadFirstChart !== undefined")
                page.wait_for_timeout(800)
                page.screenshot(path=str(OUT / "dashboard-metrics.png"), full_page=True)
                page.click(".tabs a[data-tab=areas]")
                page.select_option("#areas-prefix", "new_infections")
                page.wait_for_timeout(500)
                page.screenshot(path=str(OUT / "dashboard-areas.png"))

                live = start(url, "covid-nyc.toml", ["population.scale=0.02", "params.initial_infected=400"], paused=True, out="covid-nyc-paused")
                page.goto(f"{url}#/run/{live}/agents")
                expect(page.locator("#run-status")).to_have_text("paused", timeout=120000)
                bd.post(f"{url}api/runs/{live}/step?n=40", {})
                page.wait_for_function("document.querySelector('#run-step').textContent.includes('step 40 /')",
                                       timeout=120000)
                page.fill("#sample-where", "borough=BX, age_group=65A, stage=infectious")
                page.click("#sample-form button")
                page.locator("#sample-result .agent-link").first.click()
                for _ in range(5):
                    bd.post(f"{url}api/runs/{live}/step", {})
                    page.wait_for_timeout(400)
                page.locator("#sample-result .agent-link").first.click()
                page.wait_for_timeout(800)
                page.screenshot(path=str(OUT / "dashboard-agents.png"), full_page=True)
                bd.post(f"{url}api/runs/{live}/stop", {})

                swarm = start(url, "vicsek.toml", ["population.size=100000", "params.noise=1.0", "steps=100000"])
                page.goto(f"{url}#/run/{swarm}/space")
                expect(page.locator("#space-info")).to_contain_text("agents drawn", timeout=120000)
                page.wait_for_timeout(6000)
                page.screenshot(path=str(OUT / "dashboard-space.png"))
                bd.post(f"{url}api/runs/{swarm}/stop", {})

                llm = start(url, "covid-llm-staten-island.toml", ["steps=28", "llm.mode=live"], out="covid-llm-si")
                page.goto(f"{url}#/run/{llm}/llm")
                expect(page.locator("#llm-table tbody tr").first).to_be_visible(timeout=600000)
                bd.wait_done(url, llm)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(OUT / "dashboard-llm.png"))
                b.close()
        finally:
            p.send_signal(bd.signal.SIGINT)
            p.wait()


if __name__ == "__main__":
    main()
