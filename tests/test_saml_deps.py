"""python3-saml's XML security stack imports and works (no service needed: runs in test-fast).

lxml and xmlsec each bundle a libxml2; when the two differ, python3-saml fails at
import with "lxml & xmlsec libxml2 library version mismatch". pyproject.toml pins
them together; this catches a pin that drifts.
"""

from __future__ import annotations

from typing import Any

from keyhouse.sso.saml.config import RSA_SHA256, SHA256
from tests.saml_idp import make_key_and_cert


def test_lxml_and_xmlsec_agree_and_sign(tmp_path: Any) -> None:
    """The classic "lxml & xmlsec libxml2 library version mismatch" fails here, not at sign-in."""
    import lxml.etree
    import xmlsec
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version()
    key, cert = make_key_and_cert("sign-test")
    xml = (
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="id1">'
        '<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer>'
        "<v>hello</v></samlp:Response>"
    )
    signed = OneLogin_Saml2_Utils.add_sign(
        xml, key, cert, sign_algorithm=RSA_SHA256, digest_algorithm=SHA256
    )
    assert OneLogin_Saml2_Utils.validate_sign(signed, cert, raise_exceptions=True)
    assert not OneLogin_Saml2_Utils.validate_sign(
        signed.replace(b"hello", b"howdy"), cert, raise_exceptions=False
    )
