"""The nightly report of a two-night demo run, opened in headless Chromium (Debian's ``chromium``) through the
DevTools protocol: every chart decodes and shows pixels in the screenshot, Chinese text renders with a CJK font,
and the console stays free of errors. Also the ``postloan report`` and ``postloan sql`` commands."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.demo import write_demo_data
from pipelines.nightly import RunPaths, run_nightly

NIGHTS = [date(2026, 6, 29), date(2026, 6, 30)]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1280,900"]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    settings = load_settings()
    for night in NIGHTS:
        landing = write_demo_data(out / night.isoformat(), customers=150, seed=3, as_of=night).landing_dir
        run_nightly(RunPaths(landing=landing, warehouse=out / "warehouse.duckdb", exports=out / "exports"),
                    night, settings)
    return out


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium not found: `make browser` installs Debian's chromium and fonts-wqy-microhei")
    return found


class DevTools:
    """A headless Chromium started for one test and driven over the DevTools protocol (one page)."""

    def __init__(self, profile: Path) -> None:
        self.log = (profile.parent / "chromium.log").open("wb")
        self.process = subprocess.Popen([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=self.log, stderr=self.log, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 90
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start; see {self.log.name}")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        from websockets.sync.client import connect

        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.events: list[dict] = []
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=60)))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def browser(demo, tmp_path_factory):
    """The report loaded in Chromium: the page's image facts, a full-page screenshot and the events seen."""
    page = demo / "reports" / "2026-06-30" / "index.html"
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    profile.mkdir()
    tools = DevTools(profile)
    try:
        for domain in ("Page", "Runtime", "Log", "DOM", "CSS"):
            tools.call(f"{domain}.enable")
        tools.call("Page.navigate", url=page.as_uri())
        tools.wait_for("Page.loadEventFired")
        images = tools.evaluate("""Promise.all([...document.images].map(i => i.decode().then(() => 0, () => 0)
            .then(() => { const r = i.getBoundingClientRect();
              return {id: i.id, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                      x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; })))""")
        tools.evaluate("""(() => { const q = [...document.querySelectorAll('li.quote')]
            .find(e => /[\\u4e00-\\u9fff]/.test(e.textContent)); if (q) q.id = 'cjk-probe'; return !!q; })()""")
        root = tools.call("DOM.getDocument")["root"]["nodeId"]
        probe = tools.call("DOM.querySelector", nodeId=root, selector="#cjk-probe")["nodeId"]
        fonts = tools.call("CSS.getPlatformFontsForNode", nodeId=probe)["fonts"] if probe else []
        size = tools.call("Page.getLayoutMetrics")["cssContentSize"]
        tools.call("Emulation.setDeviceMetricsOverride", width=1280, height=int(size["height"]) + 1,
                   deviceScaleFactor=1, mobile=False)
        shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
        (page.parent / "screenshot.png").write_bytes(shot)
        return {"images": images, "fonts": fonts, "screenshot": shot, "events": list(tools.events), "page": page}
    finally:
        tools.close()


def _is_blank(region) -> bool:
    """A region is blank when it is (almost) one colour: no chart drawn."""
    pixels = region.convert("RGB").getcolors(maxcolors=1 << 20) or []
    non_white = sum(count for count, colour in pixels if min(colour) < 235)
    return len(pixels) < 8 or non_white < 0.01 * region.width * region.height


@pytest.mark.e2e
def test_the_nightly_run_writes_a_self_contained_report_with_every_section(demo):
    page = (demo / "reports" / "2026-06-30" / "index.html").read_text(encoding="utf-8")
    for section in ("id='segments'", "id='themes'", "id='days-late'", "id='actions'", "id='outcomes'",
                    "id='contact-rules'", "id='data-quality'", "Top terms and example quotes per theme",
                    "Quarantined rows by rule", "vs 2026-06-29"):
        assert section in page, section
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not load anything"
    assert len(re.findall(r'src="data:image/png;base64,', page)) >= 5
    assert CJK.search(page), "the themes' quotes hold Chinese text"


@pytest.mark.e2e
def test_every_chart_decodes_and_shows_pixels_in_the_screenshot(browser):
    from PIL import Image

    images = browser["images"]
    assert {i["id"] for i in images} >= {"chart-segments", "chart-call_map", "chart-days_late", "chart-actions",
                                         "chart-quarantine"}
    screenshot = Image.open(io.BytesIO(browser["screenshot"]))
    assert screenshot.height > 2000 and not _is_blank(screenshot)
    for image in images:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
        assert image["w"] > 100 and image["h"] > 100, image
        box = (int(image["x"]), int(image["y"]), int(image["x"] + image["w"]), int(image["y"] + image["h"]))
        assert not _is_blank(screenshot.crop(box)), f"{image['id']} is blank in {browser['page'].parent}"


@pytest.mark.e2e
def test_chinese_text_renders_with_a_cjk_font_and_the_console_has_no_errors(browser):
    families = {font["familyName"] for font in browser["fonts"] if font["glyphCount"] > 0}
    assert families & {"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC"}, families
    errors = [e for e in browser["events"] if
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []


def _postloan(*args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("postloan")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_postloan_report_and_sql_read_the_published_snapshot(demo, tmp_path):
    env_warehouse = {"POSTLOAN_WAREHOUSE": str(demo / "warehouse.duckdb")}
    os.environ.update(env_warehouse)
    try:
        report = _postloan("report", "--as-of", "2026-06-29", "--out", str(tmp_path / "reports"))
        table = _postloan("sql", "select segment, customers from analyst.segment_mix_by_night "
                                 "where as_of = '2026-06-30' order by segment")
        csv = _postloan("sql", "select * from analyst.customer_timeline", "--csv", str(tmp_path / "t.csv"))
        missing = _postloan("sql", "select * from no_such_table")
    finally:
        for key in env_warehouse:
            os.environ.pop(key, None)
    assert report.returncode == 0, report.stderr[-2000:]
    page = (tmp_path / "reports" / "2026-06-29" / "index.html").read_text(encoding="utf-8")
    assert "no previous night in this warehouse" in page
    assert table.returncode == 0 and "hardship" in table.stdout and "(4 rows)" in table.stdout, table.stderr
    assert csv.returncode == 0, csv.stderr[-2000:]
    timeline = pd.read_csv(tmp_path / "t.csv")
    assert {"customer_id", "event_on", "event_type", "detail"} <= set(timeline.columns) and len(timeline) > 100
    assert missing.returncode == 2 and "no_such_table" in missing.stderr
