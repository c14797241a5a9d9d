"""Presentations as page images: a PDF rendered page by page to WebP with PDFium
(``pypdfium2``) and Pillow; PowerPoint and OpenDocument presentations converted to PDF
first by LibreOffice in headless mode, when it is installed.

PDFium parses untrusted files and is not thread-safe, so the server never loads it: each
document is rendered by a child process (``python -m webinar.content.render``), one page
after the other, with a lower priority (``nice``), a memory limit, and a watchdog in the
parent that kills it when a page takes too long. A crash or a hang of PDFium on a hostile
file costs that child, never the server and its live rooms. The child reports on stdout,
one JSON object a line: ``{"pages": N}`` once the document is open, ``{"page": n}`` after
each page is written, then ``{"done": N}``, or ``{"error": code, ...}`` and exit status 1.

:func:`render_pdf` is the rendering itself (blocking; used by the child and the benchmark,
serialised by a lock where one process calls it from several threads). The parent side is
:func:`render_in_child` and :func:`convert_to_pdf`. Nothing here imports PDFium or Pillow at
module level: the server imports this module without loading either.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import webinar

logger = logging.getLogger(__name__)
#: Width of a page image, in pixels (the aspect is kept) ...
WIDTH = 1600
#: ... unless that makes it taller than this: then the height is this (tall pages).
MAX_HEIGHT = 2400
#: WebP quality (0-100).
QUALITY = 85
#: The most pages a presentation may have, unless the caller says otherwise.
MAX_PAGES = 300
#: Seconds the child may take to open the document or render one page before it is killed.
PAGE_SECONDS = 60.0
#: Seconds LibreOffice may take to convert one presentation to PDF.
CONVERT_SECONDS = 180.0
#: Address space of the rendering child (PDFium's allocations included).
CHILD_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
#: How much the child's priority is lowered (live media first).
CHILD_NICE = 10

#: PDFium is not thread-safe: every call from this process holds this lock.
_PDFIUM = threading.Lock()


class RenderFailure(Exception):
    """Rendering failed; ``code`` says why (for programs; the service words it for people):

    ``encrypted`` (needs a password), ``broken`` (PDFium cannot read it), ``no-pages``,
    ``too-many-pages`` (``pages``, ``max_pages``), ``bad-page`` (``page``), ``page-timeout``
    (``page``), ``crashed`` (``page``: the child died), ``storage`` (the pages could not be
    written), ``convert-failed``, ``convert-timeout``, ``needs-libreoffice``."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code, params)
        self.code = code
        self.params = params

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.params}


def page_size(width_pt: float, height_pt: float, *, width: int, max_height: int) -> float:
    """The scale (pixels per PDF point) that makes a page ``width`` pixels wide, or
    ``max_height`` pixels high when that would make it taller."""
    if not (width_pt > 0 and height_pt > 0):
        raise ValueError("the page has no size")
    scale = width / width_pt
    if height_pt * scale > max_height:
        scale = max_height / height_pt
    return scale


def render_pdf(
    source: Path,
    out_dir: Path,
    *,
    max_pages: int = MAX_PAGES,
    width: int = WIDTH,
    max_height: int = MAX_HEIGHT,
    quality: int = QUALITY,
    on_open: Callable[[int], None] | None = None,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Render every page of the PDF ``source`` to ``out_dir/<n>.webp`` (1-based); the number
    of pages, or :class:`RenderFailure`. Blocking, and holds PDFium's lock throughout."""
    import pypdfium2 as pdfium  # only the child process (and the benchmark) loads PDFium
    import pypdfium2.raw as pdfium_c

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(str(source))
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
                raise RenderFailure("encrypted") from None
            raise RenderFailure("broken") from None
        try:
            pages = len(document)
            if pages == 0:
                raise RenderFailure("no-pages")
            if pages > max_pages:
                raise RenderFailure("too-many-pages", pages=pages, max_pages=max_pages)
            if on_open is not None:
                on_open(pages)
            out_dir.mkdir(exist_ok=True)  # not its parents: a deleted event's stay deleted
            for index in range(pages):
                _render_page(document, index, out_dir, width, max_height, quality)
                if on_page is not None:
                    on_page(index + 1)
            return pages
        finally:
            document.close()


def _render_page(
    document: Any, index: int, out_dir: Path, width: int, max_height: int, quality: int
) -> None:
    import pypdfium2 as pdfium

    number = index + 1
    try:
        page = document[index]
    except pdfium.PdfiumError:
        raise RenderFailure("bad-page", page=number) from None
    try:
        try:
            scale = page_size(*page.get_size(), width=width, max_height=max_height)
            bitmap = page.render(scale=scale, may_draw_forms=False)
        except (pdfium.PdfiumError, ValueError):
            raise RenderFailure("bad-page", page=number) from None
        try:
            image = bitmap.to_pil()
            target = out_dir / f"{number}.webp"
            image.save(target, "WEBP", quality=quality, method=4)
        finally:
            bitmap.close()
    finally:
        page.close()


# ----------------------------------------------------------------------------- the child


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _limit_child() -> None:
    with contextlib.suppress(OSError, ValueError, ImportError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICE)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: render ``source`` into ``out_dir``, reporting as the module says."""
    parser = argparse.ArgumentParser(prog="python -m webinar.content.render")
    parser.add_argument("source", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--max-pages", type=int, default=MAX_PAGES)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--max-height", type=int, default=MAX_HEIGHT)
    parser.add_argument("--quality", type=int, default=QUALITY)
    args = parser.parse_args(argv)
    _limit_child()
    try:
        pages = render_pdf(
            args.source,
            args.out_dir,
            max_pages=args.max_pages,
            width=args.width,
            max_height=args.max_height,
            quality=args.quality,
            on_open=lambda n: _say({"pages": n}),
            on_page=lambda n: _say({"page": n}),
        )
    except RenderFailure as failure:
        _say({"error": failure.code, **failure.params})
        return 1
    except MemoryError:
        _say({"error": "broken", "detail": "out of memory"})
        return 1
    except OSError as exc:  # the pages cannot be written (disk full, folder gone)
        _say({"error": "storage", "detail": str(exc)})
        return 1
    _say({"done": pages})
    return 0


# ----------------------------------------------------------------------------- the parent


def _child_env() -> dict[str, str]:
    """The server's environment, with this copy of the package first on the path (the
    child must import the same code, however the server found it)."""
    env = dict(os.environ)
    here = str(Path(webinar.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    return env


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill ``process`` and its children (it leads its own session) and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(Exception):
        await asyncio.shield(process.wait())


async def _tail(stream: asyncio.StreamReader | None, keep: int = 4096) -> bytes:
    """Read ``stream`` to its end; its last ``keep`` bytes (for the log)."""
    tail = b""
    if stream is None:
        return tail
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-keep:]
    return tail


async def render_in_child(
    source: Path,
    out_dir: Path,
    *,
    max_pages: int = MAX_PAGES,
    page_seconds: float = PAGE_SECONDS,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render ``source`` into ``out_dir`` in a child process; the number of pages, or
    :class:`RenderFailure`. Cancelling kills the child."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "webinar.content.render",
        str(source),
        str(out_dir),
        "--max-pages",
        str(max_pages),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_child_env(),
        start_new_session=True,
    )
    errors = asyncio.ensure_future(_tail(process.stderr))
    pages = rendered = 0
    done = False
    try:
        assert process.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), page_seconds)
            except TimeoutError:
                raise RenderFailure("page-timeout", page=rendered + 1) from None
            if not line:
                break
            try:
                said = json.loads(line)
            except ValueError:
                continue
            if not isinstance(said, dict):
                continue
            if "error" in said:
                if "detail" in said:
                    logger.warning("the page renderer failed: %s", said["detail"])
                params = {k: v for k, v in said.items() if k in ("pages", "max_pages", "page")}
                raise RenderFailure(str(said["error"]), **params)
            if "pages" in said:
                pages = int(said["pages"])
            elif "page" in said:
                rendered = int(said["page"])
                if on_progress is not None:
                    on_progress(rendered, pages)
            elif "done" in said:
                done = True
                pages = int(said["done"])
        code = await process.wait()
        if code != 0 or not done or pages == 0:
            raise RenderFailure("crashed", page=rendered + 1)
        return pages
    finally:
        await _kill(process)
        try:
            tail = await asyncio.wait_for(asyncio.shield(errors), 5)
        except (TimeoutError, asyncio.CancelledError):
            errors.cancel()
            tail = b""
        if tail.strip():
            logger.warning("the page renderer said: %s", tail.decode("utf-8", "replace").strip())


def find_soffice() -> str | None:
    """LibreOffice's ``soffice`` (or ``libreoffice``) on the PATH; None when not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


async def convert_to_pdf(
    soffice: str, source: Path, work: Path, *, limit_seconds: float = CONVERT_SECONDS
) -> Path:
    """Convert the presentation ``source`` (named with its extension) to PDF with LibreOffice
    in headless mode, in ``work`` (a private profile there); the PDF, or
    :class:`RenderFailure`. Cancelling kills LibreOffice (its whole process group)."""
    profile = work / "profile"
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        soffice,
        f"-env:UserInstallation={profile.resolve().as_uri()}",
        "--headless",
        "--invisible",
        "--nologo",
        "--nodefault",
        "--nolockcheck",
        "--norestore",
        "--convert-to",
        "pdf",
        "--outdir",
        str(out),
        str(source),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": str(work)},
        start_new_session=True,
    )
    said = asyncio.ensure_future(_tail(process.stdout))
    try:
        try:
            code = await asyncio.wait_for(process.wait(), limit_seconds)
        except TimeoutError:
            raise RenderFailure("convert-timeout") from None
        produced = out / (source.stem + ".pdf")
        if code != 0 or not produced.is_file() or produced.stat().st_size == 0:
            output = b""
            with contextlib.suppress(Exception):
                output = await asyncio.wait_for(asyncio.shield(said), 5)
            logger.warning(
                "LibreOffice could not convert %s (exit %s): %s",
                source.name,
                code,
                output.decode("utf-8", "replace").strip(),
            )
            raise RenderFailure("convert-failed")
        return produced
    finally:
        await _kill(process)
        said.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await said


if __name__ == "__main__":
    sys.exit(main())
