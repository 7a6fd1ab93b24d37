"""`garbagewatch edge ...`: keygen, and the shipped example config running the daemon on the demo camera.

The daemon test is the box as installed, on real parts: configs/edge.example.yaml (only the
addresses, the certificates and the state paths changed), `garbagewatch edge run` as its own
process, a Mosquitto that requires TLS client certificates, and the demo's street footage served
over RTSP for both example cameras.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import signal
import ssl
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from edge_process import StatusWatcher, config_from_example, demo_camera_clip, start_edge, wait_for

import wire
from edge.cli import main
from garbagewatch.devtools.mosquitto import Mosquitto


def test_keygen_writes_a_private_key_only_we_read_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "state"
    assert main(["keygen", "--out", str(out)]) == 0
    key = wire.DeviceKey.load(out / "device.key")
    assert stat.S_IMODE((out / "device.key").stat().st_mode) == 0o600
    assert f"key id      {key.key_id}" in capsys.readouterr().out
    assert main(["keygen", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert wire.DeviceKey.load(out / "device.key").key_id == key.key_id


# -- a broker that wants client certificates -------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class ThrowawayCa:
    """A throwaway CA issuing <name>.crt / <name>.key into `folder` (what the city's CA does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._builder(_name("test city CA"), self.key.public_key()).add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(self.key, hashes.SHA256())
        self.ca_path = folder / "ca.crt"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        issuer = getattr(self, "cert", None)
        return (x509.CertificateBuilder().subject_name(subject)
                .issuer_name(issuer.subject if issuer else subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)))

    def issue(self, cn: str, *, server: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (self._builder(_name(cn), key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert_path, key_path = self.folder / f"{cn}.crt", self.folder / f"{cn}.key"
        cert_path.write_bytes(builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        os.chmod(key_path, 0o640)  # what the install guide asks for: root:garbagewatch 0640
        return cert_path, key_path

    def client_context(self, cn: str) -> ssl.SSLContext:
        cert, key = self.issue(cn)
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        ctx.load_cert_chain(str(cert), str(key))
        return ctx


class TlsMosquitto(Mosquitto):
    """The test broker with only a TLS listener that requires a certificate from `ca`."""

    def __init__(self, workdir: Path, ca: ThrowawayCa) -> None:
        super().__init__(workdir)
        self.ca = ca
        self.cert, self.key = ca.issue("broker", server=True)

    def _write_conf(self) -> None:
        # Started as root, mosquitto would become the user `mosquitto`, who cannot read pytest's
        # private tmp folders: stay who we are.
        user = [f"user {pwd.getpwuid(os.geteuid()).pw_name}"] if os.geteuid() == 0 else []
        self.conf.write_text("\n".join([
            *user,
            f"listener {self.port} 127.0.0.1",
            f"cafile {self.ca.ca_path}", f"certfile {self.cert}", f"keyfile {self.key}",
            "require_certificate true", "use_identity_as_username true", "allow_anonymous false",
            "persistence false", "log_type error", "log_type warning", f"log_dest file {self.log}",
        ]) + "\n")


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCa:
    return ThrowawayCa(tmp_path / "ca")


@pytest.fixture
def tls_broker(tmp_path: Path, ca: ThrowawayCa) -> Any:
    broker = TlsMosquitto(tmp_path / "mosquitto", ca).start()
    yield broker
    broker.kill()


# -- the done-when: the example config runs the daemon on the demo camera --------------------------


@pytest.mark.e2e
def test_example_config_runs_the_daemon_on_the_demo_camera_over_tls(
    tmp_path: Path, ca: ThrowawayCa, tls_broker: TlsMosquitto, rtsp_server: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clip = demo_camera_clip(tmp_path / "street.mp4")
    camera = rtsp_server({"gate": clip, "lane": clip})
    box = tmp_path / "box"
    box.mkdir()
    device_id = "box-017"  # the example's: the certificate's CN must be it
    cert, key = ca.issue(device_id)
    config, raw = config_from_example(
        box, [camera.url("gate"), camera.url("lane")], tls_broker.port,
        tls={"ca": str(ca.ca_path), "cert": str(cert), "key": str(key)}, analysis_interval_seconds=1.0,
        drain_timeout_seconds=3.0)
    assert raw["device_id"] == device_id

    # What the installer runs before enabling the unit.
    assert main(["check-config", str(config)]) == 0
    assert f"broker 127.0.0.1:{tls_broker.port} TLS" in capsys.readouterr().out

    watcher = StatusWatcher(tls_broker.port, device_id, tls=ca.client_context("central"))
    with open(box / "stderr", "w") as log:
        proc = start_edge(config, log)
        try:
            online = watcher.wait_for_state("online", 60)
            assert online.cameras == ["gate-east", "market-lane"]
            # Both cameras connect and frames reach the detector (the daemon logs each connect).
            wait_for(lambda: (box / "stderr").read_text().count(": connected (h264 640x360)") == 2, 60,
                     "both example cameras connected")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    watcher.wait_for_state("offline", 10)  # said by the daemon on its way out, retained
    watcher.stop()
    text = (box / "stderr").read_text()
    assert "Traceback" not in text and " ERROR " not in text, text
