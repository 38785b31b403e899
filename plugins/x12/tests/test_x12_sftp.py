"""SFTP batch transport against a real SFTP server (asyncssh, in-process on 127.0.0.1, chrooted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from carefront_sdk.errors import Unavailable
from carefront_x12.eligibility import parse_271
from carefront_x12.transport import BatchTransport, SftpBatchTransport

FIXTURES = Path(__file__).parent / "fixtures"
USER, PASSWORD = "portal", "sftp-pass"


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


@dataclass
class Mailbox:
    root: Path
    port: int
    known_hosts: str

    def transport(self, **overrides: object) -> SftpBatchTransport:
        settings: dict[str, object] = {
            "port": self.port,
            "username": USER,
            "password": PASSWORD,
            "known_hosts": self.known_hosts,
            "upload_dir": "inbound",
            "download_dir": "outbound",
            "timeout": 10.0,
        }
        settings.update(overrides)
        return SftpBatchTransport("127.0.0.1", **settings)  # type: ignore[arg-type]


@pytest.fixture
async def mailbox(tmp_path: Path) -> AsyncIterator[Mailbox]:
    """A clearinghouse's SFTP mailbox: we upload to inbound/, answers wait in outbound/."""
    root = tmp_path / "mailbox"
    (root / "inbound").mkdir(parents=True)
    (root / "outbound").mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_Server,
        sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(root).encode()),
    )
    port = server.sockets[0].getsockname()[1]
    public = host_key.export_public_key().decode().strip()
    try:
        yield Mailbox(root, port, f"[127.0.0.1]:{port} {public}")
    finally:
        server.close()
        await server.wait_closed()


async def test_submit_poll_and_acknowledge(mailbox: Mailbox) -> None:
    transport = mailbox.transport()
    assert isinstance(transport, BatchTransport)
    inquiry = (FIXTURES / "lfh-270-subscriber.x12").read_text()
    assert await transport.submit(inquiry, "270-0001.x12") == "270-0001.x12"
    assert (mailbox.root / "inbound" / "270-0001.x12").read_text() == inquiry
    assert sorted(path.name for path in (mailbox.root / "inbound").iterdir()) == ["270-0001.x12"]

    answer = (FIXTURES / "lfh-271-subscriber.x12").read_text()
    (mailbox.root / "outbound" / "271-0001.x12").write_text(answer)
    (mailbox.root / "outbound" / "271-0002.x12.part").write_text("ISA*half")
    (mailbox.root / "outbound" / ".listing").write_text("")
    (found,) = await transport.poll()
    assert found.name == "271-0001.x12"
    assert parse_271(found.content).payer_name == "PAYER C"
    assert [f.name for f in await transport.poll()] == ["271-0001.x12"], "files stay until acknowledged"

    await transport.acknowledge([found.name])
    assert await transport.poll() == []


async def test_a_server_with_another_host_key_is_refused(mailbox: Mailbox) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    transport = mailbox.transport(known_hosts=f"[127.0.0.1]:{mailbox.port} {stranger}")
    with pytest.raises(Unavailable) as caught:
        await transport.submit("ISA", "x.x12")
    assert "sftp 127.0.0.1" in caught.value.detail
    assert list((mailbox.root / "inbound").iterdir()) == []


async def test_wrong_password_is_unavailable(mailbox: Mailbox) -> None:
    with pytest.raises(Unavailable, match="PermissionDenied"):
        await mailbox.transport(password="wrong").poll()


async def test_a_name_that_is_a_path_is_refused(mailbox: Mailbox) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        await mailbox.transport().submit("ISA", "../escape.x12")
