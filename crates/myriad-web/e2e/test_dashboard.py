"""The dashboard in a real browser (Debian's Chromium, driven by Playwright)
against `myriad serve` started on 127.0.0.1.

Run by scripts/test with MYRIAD_BIN pointing at the binary under test.
With MYRIAD_SCREENSHOTS=DIR the tests also save screenshots of the views
they visit (docs/dashboard-*.png are made that way).
"""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("MYRIAD_BIN", str(ROOT / "target" / "debug" / "myriad"))
CHROMIUM = os.environ.get("MYRIAD_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("MYRIAD_SCREENSHOTS")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
TOKEN = "e2e-token-0123456789abcdef"


class Server:
    def __init__(self, runs, token=None, port=0):
        cmd = [BIN, "serve", "--port", str(port), "--runs", str(runs),
               "--scenarios", str(ROOT / "scenarios"), "--threads", "2"]
        env = dict(os.environ)
        env.pop("MYRIAD_TOKEN", None)
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.search(r"(http://[\d.]+:(\d+)/)", line)
        assert m, f"serve printed {line!r}; stderr: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.url, self.port = m.group(1), int(m.group(2))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


@pytest.fixture
def server(runs):
    s = Server(runs)
    yield s
    s.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name, full=False):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"dashboard-{name}.png"), full_page=full)


def cli_run(out, *sets):
    cmd = [BIN, "run", str(ROOT / "scenarios" / "sir-small-world.toml"), "--out", str(out), "-q", "--threads", "2"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def start_from_page(page, scenario, overrides=(), out=None, paused=False):
    page.select_option("#scenario-select", scenario)
    page.fill("#overrides", "\n".join(overrides))
    if out:
        page.fill("#outname", out)
    if paused:
        page.check("#start-paused")
    page.click("#start-button")
    page.wait_for_url(re.compile(r"#/run/"))
    return page.url.split("#/run/")[1].split("/")[0]


def step_shown(page):
    text = page.text_content("#run-step") or ""
    m = re.search(r"step (\d+) / (\d+)", text)
    return int(m.group(1)) if m else -1


def test_the_runs_list_renders_past_runs(server, runs, page):
    cli_run(runs / "from-the-command-line", "steps=30")
    cli_run(runs / "another-seed", "steps=30", "seed=4")
    page.goto(server.url)
    row = page.locator("#runs-table tbody tr", has_text="from-the-command-line")
    expect(row).to_be_visible()
    expect(row).to_contain_text("100,000")
    expect(row).to_contain_text("30/30")
    expect(row).to_contain_text("finished")
    shot(page, "runs")
    # Two runs compared on one chart.
    page.locator("#runs-table input[data-id=from-the-command-line]").check()
    page.locator("#runs-table input[data-id=another-seed]").check()
    expect(page.locator("#compare-metric option[value=I]")).to_have_count(1)
    row.click()
    page.wait_for_function("window.myriadFirstChart !== undefined")
    expect(page.locator("#run-step")).to_contain_text("step 30 / 30")


def test_a_run_started_from_the_page_streams_and_writes_what_the_command_line_writes(server, runs, page, tmp_path):
    page.goto(server.url)
    # A million agents: slow enough per step that the page sees it running.
    big = ["steps=600", "population.size=1000000"]
    run_id = start_from_page(page, "sir-small-world.toml", big, out="from-the-page")
    assert run_id == "from-the-page"
    # Streamed: the page shows steps between the first and the last while it runs.
    seen = set()
    deadline = time.time() + 120
    while time.time() < deadline:
        seen.add(step_shown(page))
        if page.text_content("#run-status") == "finished":
            break
        time.sleep(0.05)
    expect(page.locator("#run-status")).to_have_text("finished")
    middle = [s for s in seen if 0 < s < 600]
    assert middle, f"no intermediate step was drawn: {sorted(seen)}"
    print("intermediate steps drawn:", len(middle))
    assert page.evaluate("run.series.steps.length") == 601
    assert page.evaluate("window.myriadFirstChart") > 0
    shot(page, "metrics")
    cli = cli_run(tmp_path / "cli", *big)
    assert (runs / "from-the-page" / "timeseries.csv").read_bytes() == (cli / "timeseries.csv").read_bytes()
    # The chart's last point is the file's last row.
    with open(cli / "timeseries.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert page.evaluate("run.series.values[run.series.metrics.indexOf('R')].at(-1)") == float(last["R"])


def test_pause_step_and_resume(server, runs, page, tmp_path):
    # A run far longer than the test: it cannot end before the page pauses it.
    page.goto(server.url)
    start_from_page(page, "sir-small-world.toml", ["steps=100000"], out="paused-run")
    page.wait_for_function("document.querySelector('#run-step').textContent.match(/step ([1-9]\\d*) /)",
                           timeout=120000)
    page.click("#btn-pause")
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    held = step_shown(page)
    time.sleep(1.0)
    assert step_shown(page) == held, "a paused run went on stepping"
    page.click("#btn-step")
    page.wait_for_function(f"document.querySelector('#run-step').textContent.includes('step {held + 1} /')",
                           timeout=60000)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    page.click("#btn-resume")
    page.wait_for_function(
        f"parseInt(document.querySelector('#run-step').textContent.match(/step (\\d+) /)[1]) > {held + 5}",
        timeout=60000)
    page.click("#btn-stop")
    expect(page.locator("#run-status")).to_have_text("interrupted", timeout=60000)
    done = json.loads((runs / "paused-run" / "summary.json").read_text())["steps_completed"]
    assert done > held + 5
    # Pausing changed nothing: the same steps as an uninterrupted run.
    cli = cli_run(tmp_path / "cli", f"steps={done}")
    assert (runs / "paused-run" / "timeseries.csv").read_bytes() == (cli / "timeseries.csv").read_bytes()


def test_the_agent_inspector_shows_the_agents_values(server, page):
    page.goto(server.url)
    run_id = start_from_page(page, "sir-small-world.toml", paused=True)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    for _ in range(3):
        page.click("#btn-step")
        page.wait_for_timeout(150)
    page.wait_for_function("document.querySelector('#run-step').textContent.includes('step 3 /')")
    page.click(".tabs a[data-tab=agents]")
    page.fill("#sample-where", "stage=infectious")
    page.click("#sample-form button")
    expect(page.locator("#sample-result")).to_contain_text("agents match at step 3")
    first = page.locator("#sample-result .agent-link").first
    agent = int(first.text_content().strip())
    first.click()
    expect(page.locator("#agent-title")).to_have_text(f"Agent {agent}")
    row = page.locator("#agent-table tr[data-column=stage]")
    expect(row).to_contain_text("infectious")
    # The table shows what the API reads from the simulation (checked
    # against an independent simulation in crates/myriad-web/tests/api.rs).
    truth = page.request.get(f"{server.url}api/runs/{run_id}/agents/{agent}").json()
    for col in truth["columns"]:
        cell = page.locator(f"#agent-table tr[data-column={col['name']}] td.value")
        expect(cell).to_have_text(re.compile(rf"^{int(col['value'])}$"))
    shot(page, "agents")
    page.click("#btn-stop")
    expect(page.locator("#run-status")).to_have_text("interrupted", timeout=60000)


def test_the_swarm_view_draws_the_agents(server, page):
    page.goto(server.url)
    start_from_page(page, "vicsek.toml", ["population.size=4000", "steps=100000"], paused=True)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    page.click(".tabs a[data-tab=space]")
    expect(page.locator("#space-info")).to_contain_text("4,000 of 4,000 agents drawn", timeout=30000)
    coloured = page.evaluate("""() => {
        const c = document.querySelector('#space-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40) n++;
        return n;
    }""")
    assert coloured > 1000, f"only {coloured} coloured pixels"
    page.click("#btn-resume")
    page.wait_for_timeout(1500)
    shot(page, "space")
    page.click("#btn-stop")


def test_a_token_protected_server_refuses_calls_without_the_token(runs, browser):
    s = Server(runs, token=TOKEN)
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        resp = pg.goto(s.url)
        assert resp.status == 401
        assert "access token" in pg.content()
        assert pg.request.get(f"{s.url}api/runs").status == 401
        pg.goto(f"{s.url}?token={TOKEN}")
        expect(pg.locator("#conn")).to_have_text("connected")
        assert "token=" not in pg.url, "the token stays in the address bar"
        assert pg.request.get(f"{s.url}api/runs").status == 200  # the cookie carries it now
        ctx.close()
        other = browser.new_context()
        assert other.new_page().request.get(f"{s.url}api/runs").status == 401
        other.close()
    finally:
        s.stop()


def test_a_page_left_open_when_the_server_restarts(runs, page):
    s = Server(runs)
    port = s.port
    page.goto(s.url)
    start_from_page(page, "sir-small-world.toml", ["steps=100000"], out="outlived", paused=True)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    s.stop()
    expect(page.locator("#banner")).to_contain_text("Lost the connection", timeout=30000)
    s2 = Server(runs, port=port)
    try:
        expect(page.locator("#banner")).to_contain_text("The server restarted: run outlived is no longer live", timeout=60000)
        # The first server stopped the run after its step and kept its outputs.
        expect(page.locator("#run-status")).to_have_text("interrupted")
        assert (runs / "outlived" / "summary.json").exists()
    finally:
        s2.stop()


def test_two_runs_cannot_write_the_same_folder(server, page):
    page.goto(server.url)
    start_from_page(page, "sir-small-world.toml", ["steps=100000"], out="taken", paused=True)
    page.goto(server.url)
    page.select_option("#scenario-select", "sir-small-world.toml")
    page.fill("#outname", "taken")
    page.click("#start-button")
    expect(page.locator("#start-error")).to_contain_text("folder 'taken' is being written by live run 'taken'")
    page.fill("#outname", "")
    page.fill("#overrides", "params.bogus=1")
    page.click("#start-button")
    expect(page.locator("#start-error")).to_contain_text("bogus")
    shot(page, "error")


def test_an_uploaded_scenario_runs(server, runs, page, tmp_path):
    mine = tmp_path / "my-sir.toml"
    mine.write_text((ROOT / "scenarios" / "sir-small-world.toml").read_text().replace("steps = 200", "steps = 25"))
    page.goto(server.url)
    page.set_input_files("#scenario-file", str(mine))
    page.fill("#outname", "uploaded")
    page.click("#start-button")
    page.wait_for_url(re.compile(r"#/run/uploaded/"))
    expect(page.locator("#run-status")).to_have_text("finished", timeout=60000)
    assert step_shown(page) == 25
    assert (runs / "uploaded" / "timeseries.csv").read_text().count("\n") == 27  # header and steps 0-25


@pytest.mark.skipif(not os.environ.get("MYRIAD_MODEL_DIR"), reason="needs the embedded model (myriad llm pull)")
def test_an_llm_run_shows_its_calls_and_an_agents_archetype(server, runs, page):
    page.goto(server.url)
    start_from_page(page, "covid-llm-staten-island.toml", ["steps=3", "llm.mode=live"], out="llm-run", paused=True)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=120000)
    page.click("#btn-step")  # step 1: the first weekly questions
    page.wait_for_function("document.querySelector('#run-step').textContent.includes('step 1 /')", timeout=300000)
    expect(page.locator("#run-status")).to_have_text("paused", timeout=60000)
    page.click(".tabs a[data-tab=agents]")
    page.fill("#agent-id", "0")
    page.click("#agent-form button")
    expect(page.locator("#agent-provider")).to_contain_text("asked per archetype")
    expect(page.locator("#agent-provider")).to_contain_text("the last prompt its archetype was asked")
    expect(page.locator("#agent-provider .memory").first).to_contain_text("New York City")
    page.click(".tabs a[data-tab=llm]")
    expect(page.locator("#llm-table tbody tr").first).to_contain_text("local", timeout=30000)
    page.click("#btn-resume")
    expect(page.locator("#run-status")).to_have_text("finished", timeout=300000)
    page.wait_for_timeout(2500)  # the table polls once a second
    summary = json.loads((runs / "llm-run" / "summary.json").read_text())
    client = summary["behaviour"]["client"]
    shown = page.locator("#llm-totals div", has_text="calls").first.locator("b").text_content()
    assert int(shown) == client["calls"] > 0
    rows = page.locator("#llm-table tbody tr").count()
    assert rows == min(300, client["calls"] + client["cache_hits"]), (rows, client)
    shot(page, "llm")
