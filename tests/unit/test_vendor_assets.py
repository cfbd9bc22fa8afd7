"""Front-end assets are vendored, pinned and checksummed; no CDN anywhere."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from app.config import HTMX_VERSION

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "static" / "vendor"


def test_vendored_files_match_their_recorded_checksums() -> None:
    lines = (VENDOR / "SHA256SUMS").read_text().split("\n")
    recorded = dict(reversed(line.split()) for line in lines if line.strip())
    assert f"htmx-{HTMX_VERSION}.min.js" in recorded
    assert HTMX_VERSION.startswith("2.")
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_script_is_recorded() -> None:
    recorded = (VENDOR / "SHA256SUMS").read_text()
    for path in VENDOR.glob("*.js"):
        assert path.name in recorded, path.name


def test_templates_load_nothing_from_other_origins() -> None:
    external = re.compile(r"""(src|href)\s*=\s*["'](https?:)?//""", re.IGNORECASE)
    for template in (ROOT / "templates").rglob("*.html"):
        assert not external.search(template.read_text()), template


def test_pages_serve_the_pinned_htmx(client) -> None:
    page = client.get("/sign-in").text
    assert f"/static/vendor/htmx-{HTMX_VERSION}.min.js" in page
    asset = client.get(f"/static/vendor/htmx-{HTMX_VERSION}.min.js")
    assert asset.status_code == 200 and b"htmx" in asset.data


def test_test_only_vendored_files_match_their_recorded_checksums() -> None:
    vendor = ROOT / "tests" / "vendor"
    lines = (vendor / "SHA256SUMS").read_text().split("\n")
    recorded = dict(reversed(line.split()) for line in lines if line.strip())
    assert sorted(recorded) == sorted(path.name for path in vendor.glob("*.js"))
    for name, digest in recorded.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
