"""Unit tests of the cluster PKI (certificate contents, signatures, key file modes)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pizza_devcluster.certs import (
    CLIENTS,
    generate_ca,
    generate_service_account_key,
    issue_client_cert,
    issue_serving_cert,
    write_pki,
)

pytestmark = pytest.mark.unit


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


class TestCa:
    def test_is_a_p256_ca_limited_to_leaf_certificates(self) -> None:
        ca = _cert(generate_ca().cert_pem)
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca is True
        assert constraints.path_length == 0
        key = ca.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"
        ca.verify_directly_issued_by(ca)  # self-signed


class TestServingCert:
    def test_covers_localhost_and_loopback_and_is_signed_by_the_ca(self) -> None:
        ca = generate_ca()
        serving = _cert(issue_serving_cert(ca).cert_pem)
        sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
        assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        usages = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
        serving.verify_directly_issued_by(_cert(ca.cert_pem))

    def test_is_not_signed_by_another_ca(self) -> None:
        serving = _cert(issue_serving_cert(generate_ca()).cert_pem)
        with pytest.raises(InvalidSignature):  # same CA name, different key
            serving.verify_directly_issued_by(_cert(generate_ca().cert_pem))

    def test_needs_a_host(self) -> None:
        with pytest.raises(ValueError, match="at least one host"):
            issue_serving_cert(generate_ca(), ())


class TestClientCert:
    def test_carries_user_in_cn_and_groups_in_o(self) -> None:
        ca = generate_ca()
        cert = _cert(issue_client_cert(ca, "pizza-admin", ("system:masters",)).cert_pem)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert [a.value for a in cn] == ["pizza-admin"]
        assert [a.value for a in orgs] == ["system:masters"]
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert.verify_directly_issued_by(_cert(ca.cert_pem))


class TestServiceAccountKey:
    def test_public_key_matches_private_key(self) -> None:
        pair = generate_service_account_key()
        private = serialization.load_pem_private_key(pair.key_pem, password=None)
        public = serialization.load_pem_public_key(pair.public_key_pem)
        assert public == private.public_key()


class TestWritePki:
    def test_writes_every_file_with_private_keys_0600(self, tmp_path: Path) -> None:
        pki = write_pki(tmp_path / "pki")
        keys = [pki.ca_key, pki.serving_key, pki.sa_key] + [pki.client_key(n) for n in CLIENTS]
        for key in keys:
            assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        ca = _cert(pki.ca_cert.read_bytes())
        for name, (user, _groups) in CLIENTS.items():
            cert = _cert(pki.client_cert(name).read_bytes())
            cert.verify_directly_issued_by(ca)
            assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
        assert pki.sa_pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
