"""``lunatic::distributed``: lunatic's single-node behaviour (section 2.9).

lunatrio runs one node: there are no other nodes, this node's id is 0, and
modules have no control-server id. Spawning or sending to another node traps
with "Distributed is not initialized", after the same checks lunatic makes
first. The three certificate helpers (used by lunatic's control server) work
without a cluster; they return their results in memory the guest allocates
(``lunatic_alloc``), bincode-encoded.
"""

from __future__ import annotations

import datetime
import json
from typing import Final

from .abi import CallGuest, HostTrap, Namespace, lookup_trap, op_trap
from .alloc import bincode_str, host_allocated
from .data import DataMessage
from .message import take_scratch
from .process import decode_params
from .protocols import HostProcess

__all__ = ["TEST_ROOT_CERT", "TEST_ROOT_KEY", "namespace"]

namespace = Namespace("lunatic::distributed")

_NS = "lunatic::distributed"
_NOT_INITIALIZED: Final = "Distributed is not initialized"

#: lunatrio's built-in *test* root CA (its key is public: tests only).
TEST_ROOT_CERT: Final = """-----BEGIN CERTIFICATE-----
MIIBhTCCASqgAwIBAgIBATAKBggqhkjOPQQDAjA4MRYwFAYDVQQKDA1sdW5hdHJp
byB0ZXN0MR4wHAYDVQQDDBVsdW5hdHJpbyB0ZXN0IHJvb3QgQ0EwIBcNMjYwMTAx
MDAwMDAwWhgPMjA1NTEyMjUwMDAwMDBaMDgxFjAUBgNVBAoMDWx1bmF0cmlvIHRl
c3QxHjAcBgNVBAMMFWx1bmF0cmlvIHRlc3Qgcm9vdCBDQTBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABJQzHgT0QggPLh/oGTvNnlul/ETWybjxrMEhc/Jiiq7c+qvG
r6UvSiTPpldfyIRR7LbTLGAU+AU1u85VlDcacHCjIzAhMA8GA1UdEwEB/wQFMAMB
Af8wDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMCA0kAMEYCIQCaxU5tBHNsVOD2
kZloZuH2/8TnsZMo8D/Uu2QNg6xNSAIhAOY6MhPt0+eYmqcRIb+kP8v8xMOctXzp
3xOIypT2IcJf
-----END CERTIFICATE-----
"""
TEST_ROOT_KEY: Final = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZZzFxVzH9MhuMENZ
DsJ0P9T0en8iXhOSkJe4FOVi6RWhRANCAASUMx4E9EIIDy4f6Bk7zZ5bpfxE1sm4
8azBIXPyYoqu3Pqrxq+lL0okz6ZXX8iEUey20yxgFPgFNbvOVZQ3GnBw
-----END PRIVATE KEY-----
"""

#: The extension ``sign_node`` adds (OID 2.5.29.9), as lunatic's control server expects.
NODE_EXTENSION_OID: Final = "2.5.29.9"
NODE_EXTENSION_JSON: Final = json.dumps({"allowed_envs": [], "is_privileged": True}).replace(
    " ", ""
)


@namespace.function("nodes_count () -> i32")
def nodes_count(proc: HostProcess) -> int:
    return 0


@namespace.function("get_nodes (i32, i32) -> i32")
def get_nodes(proc: HostProcess, nodes_ptr: int, nodes_len: int) -> int:
    """No nodes: writes nothing, but the range is still checked."""
    proc.memory.check(nodes_ptr, 8 * nodes_len)
    return 0


@namespace.function("node_id () -> i64")
def node_id(proc: HostProcess) -> int:
    return 0


@namespace.function("module_id () -> i64")
def module_id(proc: HostProcess) -> int:
    return 0


@namespace.function("spawn (i64, i64, i64, i32, i32, i32, i32, i32) -> i32")
def spawn(
    proc: HostProcess,
    node: int,
    config_id: int,
    module: int,
    func_ptr: int,
    func_len: int,
    params_ptr: int,
    params_len: int,
    id_ptr: int,
) -> int:
    """Checks permission, name, parameters and config as lunatic does, then traps."""
    if not proc.config.can_spawn_processes:
        raise HostTrap("Process doesn't have permissions to spawn sub-processes")
    proc.memory.read_str(func_ptr, func_len, f"{_NS}::spawn")
    raw = proc.memory.read(params_ptr, params_len)
    decode_params(raw[: len(raw) - len(raw) % 17])  # a trailing partial record is ignored
    if config_id != -1 and proc.configs.get(config_id) is None:
        raise lookup_trap(f"{_NS}::spawn: Config ID doesn't exist")
    raise HostTrap(_NOT_INITIALIZED)


def _send_trap(proc: HostProcess, fn: str) -> HostTrap:
    message = take_scratch(proc, f"{_NS}::{fn}")
    if not isinstance(message, DataMessage):
        return HostTrap("Only Message::Data can be sent across nodes.")
    if message.resources:
        return HostTrap("Cannot send resources to remote nodes.")
    return HostTrap(_NOT_INITIALIZED)


@namespace.function("send (i64, i64) -> i32")
def send(proc: HostProcess, node: int, pid: int) -> int:
    """Takes the scratch message, then traps (no other node)."""
    raise _send_trap(proc, "send")


@namespace.function("send_receive_skip_search (i64, i64, i64, i64) -> i32")
def send_receive_skip_search(
    proc: HostProcess, node: int, pid: int, wait_tag: int, timeout_ms: int
) -> int:
    raise _send_trap(proc, "send_receive_skip_search")


@namespace.function("exec_lookup_nodes (i32, i32, i32, i32, i32) -> i32")
def exec_lookup_nodes(
    proc: HostProcess, query_ptr: int, query_len: int, id_ptr: int, len_ptr: int, error_ptr: int
) -> int:
    proc.memory.read_str(query_ptr, query_len, f"{_NS}::exec_lookup_nodes")
    raise HostTrap(_NOT_INITIALIZED)


@namespace.function("copy_lookup_nodes_results (i64, i32, i32, i32) -> i32")
def copy_lookup_nodes_results(
    proc: HostProcess, query_id: int, nodes_ptr: int, nodes_len: int, error_ptr: int
) -> int:
    raise HostTrap(_NOT_INITIALIZED)


# -- certificates -----------------------------------------------------------------


@namespace.function("test_root_cert (i32) -> i32", blocking=True)
def test_root_cert(proc: HostProcess, len_ptr: int) -> CallGuest:
    """The test root CA as bincode (certificate PEM, private key PEM)."""
    data = bincode_str(TEST_ROOT_CERT) + bincode_str(TEST_ROOT_KEY)
    return host_allocated(proc, data, len_ptr, f"{_NS}::test_root_cert")


@namespace.function("default_server_certificates (i32, i32, i32, i32, i32) -> i32", blocking=True)
def default_server_certificates(
    proc: HostProcess, cert_ptr: int, cert_len: int, key_ptr: int, key_len: int, len_ptr: int
) -> CallGuest:
    """A certificate for ``ctrl.lunatic.cloud`` signed by the given CA, as
    bincode (certificate PEM, private key PEM)."""
    fn = "default_server_certificates"
    ca = proc.memory.read(cert_ptr, cert_len)
    ca_key = proc.memory.read(key_ptr, key_len)
    try:
        cert, key = _server_certificate(ca, ca_key)
    except (ValueError, TypeError) as e:
        raise op_trap(e, f"{_NS}::{fn}") from None
    return host_allocated(proc, bincode_str(cert) + bincode_str(key), len_ptr, f"{_NS}::{fn}")


@namespace.function("sign_node (i32, i32, i32, i32, i32, i32, i32) -> i32", blocking=True)
def sign_node(
    proc: HostProcess,
    cert_ptr: int,
    cert_len: int,
    key_ptr: int,
    key_len: int,
    csr_ptr: int,
    csr_len: int,
    len_ptr: int,
) -> CallGuest:
    """Sign a node's CSR with the given CA, adding lunatic's node extension;
    the certificate PEM as one bincode string."""
    fn = "sign_node"
    ca = proc.memory.read(cert_ptr, cert_len)
    ca_key = proc.memory.read(key_ptr, key_len)
    csr = proc.memory.read(csr_ptr, csr_len)
    try:
        cert = _sign_csr(ca, ca_key, csr)
    except (ValueError, TypeError) as e:
        raise op_trap(e, f"{_NS}::{fn}") from None
    return host_allocated(proc, bincode_str(cert), len_ptr, f"{_NS}::{fn}")


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)


def _server_certificate(ca_pem: bytes, ca_key_pem: bytes) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lunatic Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "Control CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("ctrl.lunatic.cloud")]), critical=False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def _sign_csr(ca_pem: bytes, ca_key_pem: bytes, csr_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    csr = x509.load_pem_x509_csr(csr_pem)
    start, end = _validity()
    value = NODE_EXTENSION_JSON.encode()
    der = b"\x0c" + _der_length(len(value)) + value  # a DER UTF8String
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(NODE_EXTENSION_OID), der),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
