"""Drive the `iad-tf view` page in Debian's headless chromium with Playwright (no browser
download: the system browser at /usr/bin/chromium). Shared by the browser tests and
bench/view_speed.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iad_tf.view.server import ViewServer
from iad_tf.view.site import Resource

CHROMIUM = os.environ.get("IAD_TF_CHROMIUM", "/usr/bin/chromium")
#: Flags for this machine's closed network (no background connections) and headless use.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    from iad_tf.view.assets import missing_vendor_files

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed: pip install 'iad-tf[test]'"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM}: apt-get install chromium chromium-driver"
    if missing_vendor_files():
        return "LiteRT.js runtime not vendored: run `make web`"
    return None


@dataclass
class Page:
    """A loaded page and its server; helpers read the page's state."""

    page: Any
    server: ViewServer

    def wait(self, states: tuple[str, ...], timeout_s: float = 120.0) -> str:
        self.page.wait_for_function(
            f"{list(states)!r}.includes(document.body.dataset.state)", timeout=timeout_s * 1000
        )
        return str(self.page.evaluate("document.body.dataset.state"))

    def analyse(self, path: Path, timeout_s: float = 300.0) -> str:
        """Pick ``path`` with the file input; wait until the page is done or failed."""
        self.page.evaluate("document.body.dataset.state = 'picking'")  # not the last file's
        self.page.set_input_files("#file", str(path))
        return self.wait(("done", "error"), timeout_s)

    def drop(self, path: Path, timeout_s: float = 120.0) -> str:
        """Drop ``path`` on the drop zone (a DataTransfer holding it, as a user's drag)."""
        import base64

        data = base64.b64encode(path.read_bytes()).decode("ascii")
        dt = self.page.evaluate_handle(
            "([name, b64]) => { const dt = new DataTransfer();"
            " const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));"
            " dt.items.add(new File([bytes], name)); return dt; }",
            [path.name, data],
        )
        self.page.evaluate("document.body.dataset.state = 'picking'")
        self.page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
        return self.wait(("done", "error"), timeout_s)

    def message(self) -> str:
        return str(self.page.text_content("#message") or "").strip()

    def instruments(self) -> list[str]:
        """Instrument names as the page lists them."""
        return list(self.page.eval_on_selector_all("#instruments li[data-instrument]",
                                                    "els => els.map(e => e.dataset.instrument)"))

    def result(self, arrays: bool = True) -> dict[str, Any]:
        """frames, timing, variant and (``arrays``) probs and decisions, flat, of the song."""
        import base64

        import numpy as np

        fields = "frames: r.frames, timing: iadView.timing, variant: iadView.variant"
        if arrays:  # typed arrays as base64 of their bytes (JSON number lists are slow)
            fields += ", probs: b64(r.probs), decisions: b64(r.decisions)"
        out = dict(self.page.evaluate(
            "(() => { const r = iadView.result;"
            " const b64 = (a) => { const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);"
            " let s = ''; for (let i = 0; i < u.length; i += 32768)"
            " s += String.fromCharCode(...u.subarray(i, i + 32768)); return btoa(s); };"
            f" return {{{fields}}}; }})()"
        ))
        if arrays:
            out["probs"] = np.frombuffer(base64.b64decode(out["probs"]), "<f4")
            out["decisions"] = np.frombuffer(base64.b64decode(out["decisions"]), np.uint8)
        return out


@contextmanager
def open_page(site: dict[str, Resource], query: str = "") -> Iterator[Page]:
    """Serve ``site`` and open its page (``query``: e.g. ``?threads=1``) in headless chromium
    (ready or failed on return)."""
    from playwright.sync_api import sync_playwright

    server = ViewServer(site)
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + query)
                p = Page(page, server)
                p.wait(("ready", "error"), 120)
                yield p
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
