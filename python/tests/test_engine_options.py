"""Engine options from Python: TLS, max_packet_size, INI keys."""

import shutil
import subprocess

import pytest

from asyncapy import client as sync_client


@pytest.fixture
def cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


def test_tls_with_the_original_client_default(serve, cert):
    crt, key = cert
    server = serve("tls_echo.py", crt, key)
    for encoding in ("json", "ziproto"):
        c = sync_client.Client(encoding=encoding, timeout=10)  # tls=True, as the original
        c.connect("127.0.0.1", server.port)
        c.send({"secure": True})
        assert c.receive() == {"secure": True}
        c.disconnect()


def test_config_ini_engine_keys(tmp_path, serve, conn):
    ini = tmp_path / "config.ini"
    ini.write_text("[AsyncAPY]\naddr = 127.0.0.1\nport = 0\nmax_packet_size = 64\n")
    app = tmp_path / "app.py"
    app.write_text(
        "from asyncapy import Server\n"
        "server = Server(config='config.ini')\n"
        "@server.add_handler()\n"
        "async def echo(c, p):\n"
        "    await c.send(p)\n"
        "server.start()\n"
    )
    server = serve(app, cwd=tmp_path)
    c = conn(server.port)
    assert c.request({"a": 1}) == {"a": 1}
    assert conn(server.port).request({"a": "x" * 100})["error"] == "ERR_PACKET_TOO_LARGE"


def test_the_application_logging_configuration_applies(serve, conn):
    server = serve("own_logging.py")
    assert conn(server.port).request({"n": 7}) == {"n": 7}
    server.stop()
    assert "MYLOG INFO asyncapy: {API main} Now serving at" in server.output
    assert "MYLOG INFO asyncapy: (" in server.output  # engine lines, with session ids
    assert "MYLOG INFO app: handling 7" in server.output
    assert "printed 7" in server.output
