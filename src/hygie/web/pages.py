"""Server-rendered pages: Jinja2 templates (autoescaped) on the State design system (DSFR).

DSFR comes from the npm package ``@gouvfr/dsfr`` installed by ``scripts/setup``; its ``dist``
folder is served under ``/static/dsfr``. Pages are in French.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["dsfr_static", "render"]

_DSFR = Path("node_modules") / "@gouvfr" / "dsfr" / "dist"


@functools.cache
def _env() -> Environment:
    from hygie.domain.ens.documents import fr_date  # noqa: PLC0415
    from hygie.domain.french import fr_day  # noqa: PLC0415

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fr_day"] = fr_day  # 12/04/1985
    env.filters["fr_date"] = fr_date  # 12 avril 1985
    return env


def render(
    template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = _env().get_template(template).render(**context)
    base = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    }
    return HTMLResponse(html, status_code=status, headers={**base, **(headers or {})})


@functools.cache
def dsfr_dir() -> Path | None:
    configured = os.environ.get("HYGIE_DSFR_DIR")
    if configured:
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in [start, *start.parents]:
            if (folder / _DSFR / "dsfr.min.css").is_file():
                return folder / _DSFR
    return None


def dsfr_static() -> StaticFiles | None:
    folder = dsfr_dir()
    return StaticFiles(directory=folder) if folder else None
