"""What the browser tests share: whole-page screenshots and axe-core's blocking findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: axe-core impacts a page may not have (moderate and minor findings are reported only)
BLOCKING = {"serious", "critical"}


def whole_page_screenshot(page: Any, path: Path) -> None:
    """The whole page, the viewport as tall as the page (at most 12,000 px) so sticky bars
    stay in place, then the viewport as it was."""
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(height, 12000)})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def blocking_violations(results: dict) -> list[str]:
    """axe-core's serious and critical violations in ``results`` (``Axe().run(page)
    .response``), one line each with up to three of the elements at fault."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results["violations"]
        if v.get("impact") in BLOCKING
    ]
