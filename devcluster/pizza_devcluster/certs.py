"""The cluster's PKI: a CA, the apiserver serving cert, client certs, the service-account keys.

Everything is ECDSA P-256 and generated fresh for each cluster; nothing here is fit for production.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
SERVING_HOSTS = ("localhost", "127.0.0.1")
# The apiserver's own service IP (first address of --service-cluster-ip-range) and in-cluster names.
SERVING_EXTRA_HOSTS = ("10.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate (empty for a bare key pair) and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def public_key_pem(self) -> bytes:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def generate_ca(common_name: str = "pizza-local-ca") -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _new_key()
    name = _name(common_name)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _issue(
    ca: KeyPair,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    hosts: tuple[str, ...] = (),
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an ECDSA key")
    key = _new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _sans(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue_serving_cert(ca: KeyPair, hosts: tuple[str, ...] = SERVING_HOSTS) -> KeyPair:
    """A TLS server certificate for `hosts` (DNS names or IP addresses)."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host")
    return _issue(ca, _name(hosts[0]), ExtendedKeyUsageOID.SERVER_AUTH, hosts)


def issue_client_cert(ca: KeyPair, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
    """A TLS client certificate: Kubernetes reads the user from CN and the groups from O."""
    return _issue(ca, _name(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH)


def generate_service_account_key() -> KeyPair:
    """The key pair the apiserver signs service-account tokens with (no certificate)."""
    return KeyPair(b"", _key_pem(_new_key()))


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files one cluster uses, all under one directory."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:  # names kube-apiserver's --cert-dir expects
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def client_cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


# Client identities: file name -> (user, groups). Controller-manager and scheduler get their
# bootstrap RBAC identities, not cluster-admin.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("pizza-admin", ("system:masters",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kwok": ("pizza-kwok", ("system:masters",)),
    # the apiserver's client identity towards real kubelets (bound to system:kubelet-api-admin)
    "apiserver-kubelet-client": ("pizza-apiserver-kubelet-client", ()),
}


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def write_pki(directory: Path) -> Pki:
    """Generate every certificate and key of a cluster into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    ca = generate_ca()
    _write(pki.ca_cert, ca.cert_pem)
    _write(pki.ca_key, ca.key_pem, private=True)
    serving = issue_serving_cert(ca, SERVING_HOSTS + SERVING_EXTRA_HOSTS)
    _write(pki.serving_cert, serving.cert_pem + ca.cert_pem)
    _write(pki.serving_key, serving.key_pem, private=True)
    sa = generate_service_account_key()
    _write(pki.sa_key, sa.key_pem, private=True)
    _write(pki.sa_pub, sa.public_key_pem)
    for name, (user, groups) in CLIENTS.items():
        client = issue_client_cert(ca, user, groups)
        _write(pki.client_cert(name), client.cert_pem)
        _write(pki.client_key(name), client.key_pem, private=True)
    return pki
