"""A readable rendering of a structured document: its title and sections, as safe HTML.

A document's content may be structured rather than a PDF: a FHIR document (a ``Bundle`` of type
``document`` whose first entry is a ``Composition``, or a ``Composition``) or an HL7 CDA R2
document (``ClinicalDocument``, XML). Their sections carry a narrative — XHTML for FHIR, the CDA
narrative block for CDA — written by someone else's software: it is never passed through.
:func:`render` parses it (XML with ``defusedxml``: no DTD, no entity expansion) and writes new
HTML from an allow-list of elements, **without any attribute**, every text escaped; anything
else (scripts, styles, links, images, unknown elements) is dropped or reduced to its text.
Plain text is shown as paragraphs.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import orjson

__all__ = ["Rendered", "Section", "render"]

MAX_BYTES = 4 * 1024 * 1024  # larger structured contents are offered for download only
MAX_DEPTH = 40
XHTML = "{http://www.w3.org/1999/xhtml}"
CDA = "{urn:hl7-org:v3}"

# narrative element (local name) -> the element written; None: keep the text, drop the element
_XHTML_TAGS: dict[str, str | None] = {
    "p": "p",
    "div": "div",
    "span": "span",
    "br": "br",
    "b": "strong",
    "strong": "strong",
    "i": "em",
    "em": "em",
    "u": None,
    "sub": "sub",
    "sup": "sup",
    "ul": "ul",
    "ol": "ol",
    "li": "li",
    "table": "table",
    "caption": "caption",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "tr": "tr",
    "th": "th",
    "td": "td",
    "pre": "pre",
    "code": "code",
    "blockquote": "blockquote",
    "h1": "p",
    "h2": "p",
    "h3": "p",
    "h4": "p",
    "h5": "p",
    "h6": "p",
    "a": None,
    "dl": "dl",
    "dt": "dt",
    "dd": "dd",
}
_CDA_TAGS: dict[str, str | None] = {
    "paragraph": "p",
    "content": "span",
    "br": "br",
    "sub": "sub",
    "sup": "sup",
    "list": "ul",  # "ol" when listType="ordered"
    "item": "li",
    "table": "table",
    "caption": "caption",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "tr": "tr",
    "th": "th",
    "td": "td",
    "linkHtml": None,
    "footnote": "small",
    "footnoteRef": None,
}
_DROPPED = {"script", "style", "img", "object", "embed", "iframe", "renderMultiMedia", "col", "colgroup"}
_VOID = {"br"}


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    html: str  # safe: built here from an allow-list, every text escaped
    level: int = 0  # 0 for a section, 1 for a sub-section (deeper ones are flattened to 1)


@dataclass(frozen=True, slots=True)
class Rendered:
    kind: str  # "fhir" | "cda" | "text"
    title: str
    sections: list[Section] = field(default_factory=list)


def _local(tag: Any) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def _narrative(element: Element, tags: dict[str, str | None], depth: int = 0) -> str:
    """The children of ``element`` as safe HTML (the element itself is the container)."""
    out: list[str] = [html.escape(element.text or "")]
    for child in element:
        out.append(_node(child, tags, depth + 1))
        out.append(html.escape(child.tail or ""))
    return "".join(out)


def _node(element: Element, tags: dict[str, str | None], depth: int) -> str:
    name = _local(element.tag)
    if name in _DROPPED or depth > MAX_DEPTH:
        return ""
    if name not in tags:
        return _narrative(element, tags, depth)  # an unknown element: its text only
    written = tags[name]
    if name == "list" and element.get("listType") == "ordered":
        written = "ol"
    inner = _narrative(element, tags, depth)
    if written is None:
        return inner
    if written in _VOID:
        return f"<{written}>"
    if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return f"<p><strong>{inner}</strong></p>"
    return f"<{written}>{inner}</{written}>"


def _parse_xml(text: str | bytes) -> Element | None:
    from defusedxml import ElementTree  # noqa: PLC0415 - only for structured documents
    from defusedxml.common import DefusedXmlException  # noqa: PLC0415

    try:
        parsed: Element = ElementTree.fromstring(text)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None
    return parsed


# -- FHIR -----------------------------------------------------------------------------------------


def _composition(resource: Any) -> dict[str, Any] | None:
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Composition":
        return resource
    if resource.get("resourceType") == "Bundle" and resource.get("type") == "document":
        first = (resource.get("entry") or [{}])[0]
        inner = first.get("resource") if isinstance(first, dict) else None
        if isinstance(inner, dict) and inner.get("resourceType") == "Composition":
            return inner
    return None


def _fhir_sections(sections: Any, level: int, depth: int = 0) -> Iterator[Section]:
    for section in sections if isinstance(sections, list) else []:
        if not isinstance(section, dict) or depth > MAX_DEPTH:
            continue
        title = str(section.get("title") or (section.get("code") or {}).get("text") or "Section")
        div = (section.get("text") or {}).get("div")
        body = ""
        if isinstance(div, str):
            parsed = _parse_xml(div)
            body = _narrative(parsed, _XHTML_TAGS) if parsed is not None else ""
        yield Section(title, body.strip(), min(level, 1))
        yield from _fhir_sections(section.get("section"), level + 1, depth + 1)


def _render_fhir(data: bytes) -> Rendered | None:
    try:
        composition = _composition(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None
    if composition is None:
        return None
    title = str(composition.get("title") or "Document")
    return Rendered("fhir", title, list(_fhir_sections(composition.get("section"), 0)))


# -- CDA ------------------------------------------------------------------------------------------


def _cda_sections(parent: Element, level: int, depth: int = 0) -> Iterator[Section]:
    for component in parent.findall(f"{CDA}component"):
        section = component.find(f"{CDA}section")
        if section is None or depth > MAX_DEPTH:
            continue
        title_element = section.find(f"{CDA}title")
        title = "".join(title_element.itertext()).strip() if title_element is not None else ""
        text = section.find(f"{CDA}text")
        body = _narrative(text, _CDA_TAGS) if text is not None else ""
        yield Section(title or "Section", body.strip(), min(level, 1))
        yield from _cda_sections(section, level + 1, depth + 1)


def _render_cda(data: bytes) -> Rendered | None:
    root = _parse_xml(data)
    if root is None or root.tag != f"{CDA}ClinicalDocument":
        return None
    title_element = root.find(f"{CDA}title")
    title = "".join(title_element.itertext()).strip() if title_element is not None else ""
    body = root.find(f"{CDA}component/{CDA}structuredBody")
    sections = list(_cda_sections(body, 0)) if body is not None else []
    return Rendered("cda", title or "Document", sections)


# -- text -----------------------------------------------------------------------------------------


def _render_text(data: bytes) -> Rendered:
    text = data.decode("utf-8", errors="replace")
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    body = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs if p
    )
    return Rendered("text", "", [Section("", body)])


def render(data: bytes, content_type: str) -> Rendered | None:
    """The readable rendering of a content, or None when it is not structured (a PDF, an image)
    or cannot be read (then it is offered for download only)."""
    if len(data) > MAX_BYTES:
        return None
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    head = data.lstrip()[:1]
    if media in ("application/fhir+json", "application/json") or (media == "" and head == b"{"):
        return _render_fhir(data)
    if media in ("text/xml", "application/xml", "application/hl7-v3+xml", "application/cda+xml") or (
        media == "" and head == b"<"
    ):
        return _render_cda(data)
    if media == "text/plain":
        return _render_text(data)
    return None
