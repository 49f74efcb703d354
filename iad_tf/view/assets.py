"""Where the page's own files live: ``static/`` (the page, written here) and
``static/vendor/`` (LiteRT.js, copied from the npm packages pinned in ``web/package-lock.json``
by ``make web``; packaged with the wheel, not kept in git). TF-free."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Files of LiteRT.js the page loads (relative to ``static/vendor/``): the ES module, its one
#: import, and the WASM builds with and without relaxed SIMD and the threaded one (used when
#: the page is cross-origin isolated), chosen by LiteRT.js from what the browser supports.
VENDOR_FILES: tuple[str, ...] = (
    "litertjs/core.js",
    "litertjs/wasm-utils.js",
    "litertjs/wasm/litert_wasm_internal.js",
    "litertjs/wasm/litert_wasm_internal.wasm",
    "litertjs/wasm/litert_wasm_compat_internal.js",
    "litertjs/wasm/litert_wasm_compat_internal.wasm",
    "litertjs/wasm/litert_wasm_threaded_internal.js",
    "litertjs/wasm/litert_wasm_threaded_internal.wasm",
)


class AssetsError(RuntimeError):
    """The browser runtime is missing from this install."""


def static_dir() -> Path:
    return Path(str(resources.files("iad_tf") / "view" / "static"))


def missing_vendor_files(root: Path | None = None) -> list[str]:
    """Vendor files absent under ``root`` (default: the package's ``static/``)."""
    vendor = (root or static_dir()) / "vendor"
    return [f for f in VENDOR_FILES if not (vendor / f).is_file()]


def check_vendor(root: Path | None = None) -> None:
    """Raise :class:`AssetsError` (one line) when the LiteRT.js runtime is not installed."""
    missing = missing_vendor_files(root)
    if missing:
        raise AssetsError(
            f"the browser runtime (LiteRT.js) is missing from {static_dir() / 'vendor'} "
            f"({len(missing)} of {len(VENDOR_FILES)} files): run `make web` in the source "
            "checkout (npm ci of web/package-lock.json), then reinstall"
        )
