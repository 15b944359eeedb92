"""A running service with an organisation, a card holder and an RA, and the two client
programs (the reference authenticator and the identity agent) as separate processes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import auth as a
from tests.support import factories as f
from tests.support.cli import Cli
from tests.support.live import Instance, Program, Running, serve, tls_files

from cardvault.config import Settings
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor

_n = itertools.count()


@dataclass(frozen=True)
class World:
    service: Instance
    tmp: Path
    ca: Path
    email: str
    serial: str
    card_id: str
    ra_email: str
    cli: Cli

    def authenticator(self, name: str = "phone") -> Program:
        return Program("cardvault-authenticator", self.ca, self.tmp / name)

    def agent(self, name: str = "pc", url: str | None = None) -> Program:
        return Program(
            "cardvault-agent", self.ca, self.tmp / name, ("--server", url or self.service.url)
        )

    def pairing_png(self, url: str | None = None, *extra: str) -> Path:
        png = self.tmp / f"pair-{next(_n)}.png"
        env = {"CARDVAULT_PUBLIC_URL": url or self.service.url}
        self.cli.run(
            "method", "pair-device", self.serial, "--org", "ORG1", "--png", str(png), *extra, **env
        ).ok()
        return png

    def pair(
        self, phone: Program, *, application: str = "authenticator", biometric: bool = False
    ) -> None:
        args = ["pair", "--qr-image", str(self.pairing_png()), "--passcode-stdin"]
        args += ["--application", application] + (["--biometric"] if biometric else [])
        done = phone.run(*args, stdin=f.STRONG_PASSCODE + "\n")
        assert done.returncode == 0, done.stderr
        assert self.serial in done.stdout

    def login(
        self,
        pc: Program,
        *args: str,
        stdin: str | None = None,
        number_file: Path | None = None,
    ) -> Running:
        number_file = number_file or self.tmp / f"number-{next(_n)}"
        return pc.start(
            "login",
            "--email",
            self.email,
            "--passcode-stdin",
            "--number-file",
            str(number_file),
            *args,
            stdin=stdin if stdin is not None else f.STRONG_PASSCODE + "\n",
        )


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    return tls_files(tmp_path / "tls")


def build_world(
    settings: Settings, instance: Instance, tmp: Path, ca: Path, operator: Actor
) -> World:
    rt = instance.rt
    a.open_org(rt, operator)
    email = f"holder{next(_n)}@example.org"
    card = f.active_card(rt, operator, "ORG1", email=email, algorithm="ecp256")
    ra_email = f"ra{next(_n)}@example.org"
    ra_uid = f.person(rt, operator, "ORG1", forename="Rana", surname="Admin", email=ra_email)
    directory.grant_role(rt, operator, user_id=ra_uid, org_code="ORG1", role="ra_agent")
    cli = Cli(settings.data_dir, settings.resolved_database_url)
    return World(instance, tmp, ca, email, card.serial, card.card_id, ra_email, cli)


@pytest.fixture
def world(
    settings: Settings, tls: tuple[Path, Path], tmp_path: Path, operator: Actor
) -> Iterator[World]:
    with serve(settings, *tls, push_challenge_seconds=20) as instance:
        yield build_world(settings, instance, tmp_path, tls[0], operator)
