"""A headless Chromium driven over the DevTools protocol: enough to load a page as a person
would and ask it what it shows (console errors, images, layout, text, a screenshot).

The browser is the system's (Debian's `chromium` package); nothing is downloaded. The protocol
is spoken over a WebSocket with aiohttp, which `datasets` already installs.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """The path of a Chromium-family browser on this machine, or ``None``."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class PageReport(dict):
    """What :func:`inspect_page` saw: ``errors`` (console errors and uncaught exceptions),
    ``images`` (``{"alt", "width"}``, width 0 when it did not decode), ``tables`` (the right
    edge of each table with a class, by class), ``viewport`` (width), ``text`` (the page's
    visible text) and ``screenshot`` (PNG bytes)."""


def inspect_page(url: str, width: int = 1400, height: int = 900, timeout: float = 60.0) -> PageReport:
    """Load ``url`` in headless Chromium at ``width`` x ``height`` CSS pixels and report on it."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="triad-browser-"))
    process = subprocess.Popen(
        [
            browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--remote-debugging-port=0", "--remote-allow-origins=*",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port = _debugging_port(profile, process, timeout)
        return asyncio.run(asyncio.wait_for(_inspect(port, url, width, height), timeout))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _debugging_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """Chromium writes the port it chose to ``DevToolsActivePort`` in its profile."""
    deadline = time.monotonic() + timeout
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the browser exited with code {process.returncode}")
        if marker.is_file() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.1)
    raise RuntimeError("the browser did not open its debugging port")


_PROBE = """JSON.stringify({
  images: [...document.images].map(i => ({alt: i.alt, width: i.complete ? i.naturalWidth : 0})),
  tables: Object.fromEntries([...document.querySelectorAll('table[class]')]
      .map(t => [t.className, t.getBoundingClientRect().right])),
  viewport: window.innerWidth,
  text: document.body.innerText,
})"""


async def _inspect(port: int, url: str, width: int, height: int) -> PageReport:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            ids = itertools.count(1)
            errors: list[str] = []
            loaded = asyncio.Event()
            pending: dict[int, asyncio.Future] = {}

            async def listen() -> None:
                async for message in socket:
                    data = json.loads(message.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data)
                    elif data.get("method") == "Page.loadEventFired":
                        loaded.set()
                    elif data.get("method") == "Runtime.exceptionThrown":
                        errors.append(data["params"]["exceptionDetails"].get("text", "exception"))
                    elif data.get("method") == "Runtime.consoleAPICalled" and data["params"]["type"] == "error":
                        errors.append(" ".join(str(a.get("value", "")) for a in data["params"]["args"]))
                    elif data.get("method") == "Log.entryAdded" and data["params"]["entry"]["level"] == "error":
                        errors.append(data["params"]["entry"]["text"])

            async def call(method: str, **params) -> dict:
                call_id = next(ids)
                pending[call_id] = asyncio.get_running_loop().create_future()
                await socket.send_json({"id": call_id, "method": method, "params": params})
                reply = await pending[call_id]
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

            listener = asyncio.create_task(listen())
            for domain in ("Page", "Runtime", "Log"):
                await call(f"{domain}.enable")
            await call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            await call("Page.navigate", url=url)
            await loaded.wait()
            probe = await call("Runtime.evaluate", expression=_PROBE, returnByValue=True)
            shot = await call("Page.captureScreenshot", format="png")
            listener.cancel()
    report = PageReport(json.loads(probe["result"]["value"]))
    report["errors"] = errors
    report["screenshot"] = base64.b64decode(shot["data"])
    return report
