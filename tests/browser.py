"""Headless Chromium for the report's tests: the system's browser (Debian's `chromium`) driven by
Playwright, offline, recording every request and console message a page makes.

No skip when the browser is missing: the tests fail, naming the package (`make test` and
.ci/run install it)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        raise RuntimeError("no chromium: install Debian's `chromium` package (make test does)")
    return path


@dataclass
class Opened:
    """A page and everything it did while loading and being used."""

    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def wait(self, expr: str, timeout: float = 20.0) -> None:
        """Poll `expr` from outside the page: Playwright's wait_for_function evaluates strings
        inside the page, which the page's Content-Security-Policy (no eval) rightly refuses."""
        end = time.monotonic() + timeout
        while not self.page.evaluate(f"() => !!({expr})"):
            if time.monotonic() > end:
                raise TimeoutError(f"page never reached {expr}")
            time.sleep(0.05)

    def foreign_requests(self, allowed_dir: Path) -> list[str]:
        """Requests for anything but a file in `allowed_dir` (the page's folder)."""
        prefix = allowed_dir.resolve().as_uri() + "/"
        return [u for u in self.requests if not u.startswith(prefix)]


class Browser:
    """One Chromium per test module (starting it takes ~1 s); a fresh offline context a page."""

    def __init__(self):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=chromium_path(), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
                  "--proxy-server=127.0.0.1:9", "--no-first-run", "--disable-extensions"])

    def open(self, path: Path, width: int = 1280, height: int = 900) -> Opened:
        ctx = self.browser.new_context(offline=True, viewport={"width": width, "height": height})
        ctx.route("http*://**/*", lambda route: route.abort())  # belt and braces: no network
        page = ctx.new_page()
        opened = Opened(page)
        page.on("request", lambda r: opened.requests.append(r.url))
        page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.errors.append(str(e)))
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return opened

    def close(self):
        self.browser.close()
        self._pw.stop()
