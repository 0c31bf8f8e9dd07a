"""The documents mod_xml_curl expects back, built with ElementTree (it escapes; we never do).

Every answer is `<document type="freeswitch/xml"><section name="...">...`; a lookup we cannot
answer is the "not found" result, which makes FreeSWITCH fall back to its static XML at once.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring


def document(section: str) -> tuple[Element, Element]:
    """A new document and its one section element."""
    root = Element("document", type="freeswitch/xml")
    return root, SubElement(root, "section", name=section)


def not_found() -> bytes:
    root = Element("document", type="freeswitch/xml")
    section = SubElement(root, "section", name="result")
    SubElement(section, "result", status="not found")
    return render(root)


def param(parent: Element, name: str, value: str, tag: str = "param") -> Element:
    return SubElement(parent, tag, name=name, value=value)


def render(root: Element) -> bytes:
    body: bytes = tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
