"""Responses are written as text (entrypoints/soap.py): the bytes must be those lxml wrote when the
response was an element tree, for every character lxml accepts, and what lxml refuses is refused."""
from __future__ import annotations

import pytest
from lxml import etree

from pars_ws.entrypoints.soap import TNS, P, _leaf, _node, make_application

DECLARATION = f' xmlns:{TNS}="{P}"'.encode()


def lxml_leaf(text) -> bytes | None:
    """How lxml wrote an element holding this text, or None when it refused the text."""
    el = etree.Element(f"{{{P}}}X", nsmap={TNS: P})
    try:
        el.text = text
    except ValueError:
        return None
    return etree.tostring(el, encoding="UTF-8").replace(DECLARATION, b"")


def written_leaf(text) -> bytes | None:
    try:
        return _leaf("X", text).encode()
    except ValueError:
        return None


@pytest.mark.parametrize("text", [
    "plain", "", None, "a & b", "<tag>", "x > y", "\"quoted\" and 'single'", "line\r\nbreak", "tab\there",
    "Zoë Ångström", "\u2028", "\U0001F600", "\x7f\x85", "&amp; already escaped", "]]>",
])
def test_text_is_written_as_lxml_wrote_it(text):
    assert written_leaf(text) == lxml_leaf(text)


def test_every_character_lxml_refuses_is_refused_and_every_other_is_written_alike():
    differing = [cp for cp in [*range(0x10000), 0x10000, 0x1F600, 0x10FFFF]
                 if written_leaf(f"a{chr(cp)}b") != lxml_leaf(f"a{chr(cp)}b")]
    assert differing == []
    assert written_leaf("a\x0bb") is None and written_leaf("a\ud800b") is None  # the check covers refusals


def test_elements_nest_and_an_empty_one_closes_itself():
    assert _node("A", _leaf("B", 1), _node("C")) == f"<{TNS}:A><{TNS}:B>1</{TNS}:B><{TNS}:C/></{TNS}:A>"


@pytest.mark.parametrize("soap12, prefix, namespace", [
    (False, "soap11env", "http://schemas.xmlsoap.org/soap/envelope/"),
    (True, "soap12env", "http://www.w3.org/2003/05/soap-envelope"),
])
def test_the_envelope_around_a_response_is_what_spyne_serialised(soap12, prefix, namespace):
    """spyne's serialisation: the XML declaration, then the envelope declaring its own prefix and the
    service's (the faults still show the envelope prefix), the response element inside Body."""
    start, end = make_application(None, soap12=soap12).out_protocol._envelope
    env = etree.Element(f"{{{namespace}}}Envelope", nsmap={prefix: namespace, TNS: P})
    etree.SubElement(etree.SubElement(env, f"{{{namespace}}}Body"), f"{{{P}}}Done").text = "yes"
    expected = etree.tostring(env, encoding="UTF-8", xml_declaration=True)
    assert start + _leaf("Done", "yes").encode() + end == expected
