"""The pkcs11 master-key provider against a real SoftHSM2 token: the key is made inside the
token and never leaves it, blobs seal and open there, and every way of pointing the service
at the wrong module, token, PIN or key is refused with a clear error before anything runs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from tests.support import auth as a
from tests.support import softhsm
from tests.support.databases import TEST_ARGON2

from cardvault.config import Settings
from cardvault.errors import IntegrityError, InvalidInput
from cardvault.keystore.pkcs11 import KeyProviderUnavailable, Pkcs11MasterKey
from cardvault.keystore.provider import ProviderMismatch, unpack
from cardvault.keystore.ring import MasterKeyRing
from cardvault.services.cards import operations as card_operations
from cardvault.services.signin.engine import Engine
from cardvault.services.system import bootstrap
from cardvault.services.system.runtime import Actor, keystore_for, local_keystore, open_runtime

AAD = b"card record aad"


def _settings(hsm: softhsm.SoftHsm, data: Path, label: str, **over: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data,
        "database_url": f"sqlite:///{data.parent / 'cv.db'}",
        "key_provider": "pkcs11",
        "pkcs11_module": hsm.module,
        "pkcs11_token_label": hsm.token,
        "pkcs11_key_label": label,
        "pkcs11_pin": hsm.pin,
        **TEST_ARGON2,
        **over,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(hsm: softhsm.SoftHsm, tmp_path: Path) -> Settings:
    return _settings(hsm, tmp_path / "data", softhsm.key_label())


@pytest.fixture
def master(settings: Settings) -> Iterator[Pkcs11MasterKey]:
    key = keystore_for(settings).create()
    assert isinstance(key, Pkcs11MasterKey)
    yield key
    key.close()


def _token_key(hsm: softhsm.SoftHsm, label: str) -> dict[Attribute, object]:
    token = pkcs11.lib(str(hsm.module)).get_token(token_label=hsm.token)
    with token.open() as session:  # the provider's login covers this process's sessions
        key = session.get_key(
            object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label
        )
        return {
            attr: key[attr]
            for attr in (Attribute.EXTRACTABLE, Attribute.SENSITIVE, Attribute.VALUE_LEN)
        }


def test_the_key_is_made_inside_the_token_and_cannot_leave_it(
    hsm: softhsm.SoftHsm, settings: Settings, master: Pkcs11MasterKey
) -> None:
    attrs = _token_key(hsm, settings.pkcs11_key_label)
    assert attrs[Attribute.EXTRACTABLE] is False
    assert attrs[Attribute.SENSITIVE] is True
    assert attrs[Attribute.VALUE_LEN] == 32
    description = json.loads((settings.keys_dir / "master.json").read_text())
    assert description["provider"] == "pkcs11"
    assert description["key_label"] == settings.pkcs11_key_label
    assert set(description) == {
        "format",
        "provider",
        "mk_version",
        "key_id",
        "token_label",
        "key_label",
        "check",
    }
    assert not (settings.keys_dir / "master.key").exists()


def test_a_blob_sealed_in_the_token_opens_only_with_its_aad_and_intact(
    master: Pkcs11MasterKey,
) -> None:
    blob = master.seal(b"card key record", aad=AAD)
    assert b"card key record" not in blob
    assert master.open(blob, aad=AAD) == bytearray(b"card key record")
    assert master.seal(b"card key record", aad=AAD) != blob  # a fresh nonce each time
    with pytest.raises(IntegrityError, match="does not open"):
        master.open(blob, aad=b"another record")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IntegrityError, match="does not open"):
        master.open(tampered, aad=AAD)
    with pytest.raises(IntegrityError, match="truncated"):
        master.open(blob[:12], aad=AAD)


def test_a_restarted_service_finds_the_same_key(
    settings: Settings, master: Pkcs11MasterKey
) -> None:
    blob = master.seal(b"sealed before the restart", aad=AAD)
    again = keystore_for(settings).load()
    assert isinstance(again, MasterKeyRing)
    assert isinstance(again.current(), Pkcs11MasterKey)
    try:
        assert again.open(blob, aad=AAD) == bytearray(b"sealed before the restart")
        assert again.key_id == master.key_id
    finally:
        again.close()


def test_a_dropped_session_is_opened_again(master: Pkcs11MasterKey) -> None:
    blob = master.seal(b"x", aad=AAD)
    master._session.close()  # what an HSM restart does to the process's session
    assert master.open(blob, aad=AAD) == bytearray(b"x")


def test_threads_sealing_and_opening_at_once_all_succeed(master: Pkcs11MasterKey) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                plain = f"{n}:{i}".encode()
                assert master.open(master.seal(plain, aad=AAD), aad=AAD) == bytearray(plain)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_second_installation_may_not_take_the_same_label(
    hsm: softhsm.SoftHsm, settings: Settings, master: Pkcs11MasterKey, tmp_path: Path
) -> None:
    other = _settings(hsm, tmp_path / "other", settings.pkcs11_key_label)
    with pytest.raises(InvalidInput, match="already holds a key labelled"):
        keystore_for(other).create()
    assert not (other.keys_dir / "master.json").exists()
    with pytest.raises(InvalidInput, match="already exists"):
        keystore_for(settings).create()


def test_another_key_than_this_directorys_is_refused(
    hsm: softhsm.SoftHsm, settings: Settings, master: Pkcs11MasterKey, tmp_path: Path
) -> None:
    other = _settings(hsm, tmp_path / "other", softhsm.key_label())
    other_key = keystore_for(other).create()
    assert isinstance(other_key, Pkcs11MasterKey)
    other_key.close()
    # this data directory's description, pointed at the other installation's key
    wrong = settings.model_copy(update={"pkcs11_key_label": other.pkcs11_key_label})
    with pytest.raises(KeyProviderUnavailable, match="is not this data directory's master key"):
        keystore_for(wrong).load()


_LOAD = """
import sys
from cardvault.config import Settings
from cardvault.services.system.runtime import keystore_for
try:
    keystore_for(Settings()).load()
except Exception as exc:
    print(type(exc).__name__, exc, getattr(exc, "remedy", ""))
    sys.exit(1)
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"CARDVAULT_PKCS11_PIN": "wrong-pin"}, "refused the PIN"),
        ({"CARDVAULT_PKCS11_TOKEN_LABEL": "no-such-token"}, "no token labelled 'no-such-token'"),
        ({"CARDVAULT_PKCS11_KEY_LABEL": "no-such-key"}, "no AES key labelled 'no-such-key'"),
        ({"CARDVAULT_PKCS11_TOKEN_LABEL": softhsm.OTHER_TOKEN}, "no AES key labelled"),
    ],
)
def test_a_misconfigured_provider_says_what_is_wrong(
    hsm: softhsm.SoftHsm,
    settings: Settings,
    master: Pkcs11MasterKey,
    change: dict[str, str],
    message: str,
) -> None:
    """In a process of its own: a PKCS#11 login holds for every session of a process, so a
    wrong PIN is only ever asked of a process that is not logged in yet (a service starting)."""
    env = {
        **os.environ,
        **hsm.env(settings.pkcs11_key_label),
        **_test_kdf_env(),
        "CARDVAULT_DATA_DIR": str(settings.data_dir),
        **change,
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "KeyProviderUnavailable" in done.stdout
    assert message in done.stdout
    assert "wrong-pin" not in done.stdout + done.stderr


def test_a_module_that_does_not_load_is_named(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "not-a-module.so"
    broken.write_bytes(b"not a shared object")
    store = keystore_for(settings.model_copy(update={"pkcs11_module": broken}))
    with pytest.raises(KeyProviderUnavailable, match="could not be loaded") as info:
        store.create()
    assert "CARDVAULT_PKCS11_MODULE" in (info.value.remedy or "")


def test_settings_name_what_the_provider_still_needs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CARDVAULT_PKCS11_MODULE.*CARDVAULT_PKCS11_TOKEN_LABEL"):
        Settings(data_dir=tmp_path, key_provider="pkcs11", **TEST_ARGON2)  # type: ignore[arg-type]


def test_a_pin_file_is_read_and_its_absence_named(
    hsm: softhsm.SoftHsm, tmp_path: Path, master: Pkcs11MasterKey, settings: Settings
) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(hsm.pin + "\n")
    from_file = settings.model_copy(update={"pkcs11_pin": None, "pkcs11_pin_file": pin_file})
    loaded = keystore_for(from_file).load()
    assert isinstance(loaded.current(), Pkcs11MasterKey)
    loaded.close()
    assert loaded.key_id == master.key_id
    missing = from_file.model_copy(update={"pkcs11_pin_file": tmp_path / "absent"})
    with pytest.raises(InvalidInput, match=r"PIN file .* cannot be read"):
        keystore_for(missing).load()


def test_a_directory_of_one_provider_is_not_opened_by_the_other(
    hsm: softhsm.SoftHsm, settings: Settings, master: Pkcs11MasterKey, tmp_path: Path
) -> None:
    as_local = Settings(data_dir=settings.data_dir, **TEST_ARGON2)  # type: ignore[arg-type]
    with pytest.raises(ProviderMismatch, match="held by the 'pkcs11' key provider") as info:
        keystore_for(as_local).load()
    assert "CARDVAULT_KEY_PROVIDER=pkcs11" in (info.value.remedy or "")
    local_dir = Settings(data_dir=tmp_path / "local", **TEST_ARGON2)  # type: ignore[arg-type]
    keystore_for(local_dir).create()
    as_hsm = _settings(hsm, local_dir.data_dir, softhsm.key_label())
    with pytest.raises(ProviderMismatch, match="held by the 'local' key provider"):
        keystore_for(as_hsm).load()


def test_custody_commands_of_the_local_key_are_refused(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="inside the HSM"):
        local_keystore(settings)


def test_a_service_on_the_hsm_issues_signs_in_and_signs(
    hsm: softhsm.SoftHsm, tmp_path: Path, database_url: str
) -> None:
    """init, a card, a sign-in with passcode + TOTP and a signature: every card record, the
    CA, audit and transport keys sealed and opened by the key in the token."""
    settings = _settings(hsm, tmp_path / "data", softhsm.key_label(), database_url=database_url)
    operator = Actor.operator("tester")
    bootstrap.initialise(settings, actor=operator, demo=False, if_missing=False, echo=print)
    rt = open_runtime(settings)
    try:
        assert isinstance(rt.master_key, MasterKeyRing)
        assert isinstance(rt.master_key.current(), Pkcs11MasterKey)
        a.open_org(rt, operator)
        h = a.holder(rt, operator)
        login = a.login(Engine(rt), h, code=h.code())
        assert login.session is not None
        signature = card_operations.sign(
            rt,
            a.client(),
            card_operations.SignRequest(
                token=login.session.token,
                session_key=login.session_key,
                key="authentication",
                digest=bytes(32),
            ),
        )
        assert signature.signature
        # what is on disk does not open without the token
        for sealed in settings.keys_dir.rglob("*.sealed"):
            assert b"PRIVATE KEY" not in sealed.read_bytes()
    finally:
        rt.close()
        rt.master_key.close()  # type: ignore[attr-defined]


def test_cardvault_init_on_the_hsm_from_the_command_line(
    hsm: softhsm.SoftHsm, tmp_path: Path
) -> None:
    env = {**os.environ, **hsm.env(softhsm.key_label()), **_test_kdf_env()}
    cli = str(Path(sys.executable).parent / "cardvault")
    data = str(tmp_path / "data")
    done = subprocess.run(
        [cli, "--data-dir", data, "init"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert hsm.pin not in done.stdout + done.stderr
    description = json.loads((tmp_path / "data" / "keys" / "master.json").read_text())
    assert description["provider"] == "pkcs11"
    base64.b64decode(description["check"], validate=True)
    split = subprocess.run(
        [cli, "--data-dir", data, "keys", "split", "--shares", "3", "--threshold", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert split.returncode != 0
    assert "inside the HSM" in split.stderr


def _test_kdf_env() -> dict[str, str]:
    return {f"CARDVAULT_{k.upper()}": str(v) for k, v in TEST_ARGON2.items()}


def test_a_rotation_adds_a_key_in_the_token_and_retiring_destroys_the_old_one(
    hsm: softhsm.SoftHsm, settings: Settings, master: Pkcs11MasterKey
) -> None:
    """The pkcs11 half of `cardvault keys rotate-master` (issue 20): the new version is a
    new non-extractable key labelled <label>-v2; both open until the old one is retired."""
    before = master.seal(b"sealed under version 1", aad=AAD)
    store = keystore_for(settings)
    assert store.begin_rotation() == 2
    ring = store.load()
    assert isinstance(ring, MasterKeyRing)
    try:
        assert ring.versions == (1, 2)
        after = ring.seal(b"sealed under version 2", aad=AAD)
        assert unpack(after)[0] == 2
        assert ring.open(before, aad=AAD) == bytearray(b"sealed under version 1")
        attrs = _token_key(hsm, f"{settings.pkcs11_key_label}-v2")
        assert attrs[Attribute.EXTRACTABLE] is False
        resealed = ring.reseal(before, aad=AAD)
        assert resealed is not None
        assert unpack(resealed)[0] == 2
    finally:
        ring.close()
    assert store.finish_rotation() == [1]
    again = store.load()
    try:
        assert again.versions == (2,)  # type: ignore[attr-defined]
        assert again.open(after, aad=AAD) == bytearray(b"sealed under version 2")
        with pytest.raises(IntegrityError):
            again.open(before, aad=AAD)
    finally:
        again.close()  # type: ignore[attr-defined]
    with pytest.raises(pkcs11.exceptions.NoSuchKey):
        _token_key(hsm, settings.pkcs11_key_label)
