from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardvault.crypto.aead import SealBroken
from cardvault.crypto.kdf import Argon2Params
from cardvault.crypto.keys import (
    KeyAlgorithm,
    SignatureScheme,
    generate_private_key,
    load_private_key,
    private_key_to_pkcs8,
    sign_message,
)
from cardvault.crypto.keyslots import (
    CardKeyRecord,
    KeyNotFound,
    KeySlot,
    RecordCorrupt,
    SealedKey,
    SlotKind,
    SlotNotFound,
    WrongSecret,
    make_device_slot,
    make_passcode_slot,
    make_recovery_code_slot,
    make_recovery_slots,
    new_dek,
    new_recovery_code,
    new_session_key,
    normalize_answer,
    open_device_slot,
    open_passcode_slot,
    open_private_key,
    open_recovery_code_slot,
    open_recovery_slots,
    seal_private_key,
    unwrap_session,
    wrap_for_session,
)
from cardvault.errors import AuthenticationFailed, IntegrityError, InvalidInput, NotFound

CHEAP = Argon2Params(time_cost=1, memory_kib=64, parallelism=1)
KDF_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CARD = "card-0001"
PASSCODE = "correct horse battery"
ANSWERS = ("Rex", "Main Street", "Blue")
DEVICE_ID = "phone-1"
DEVICE_SECRET = bytes(range(32))
AUTH_PKCS8 = b"\x30\x82" + bytes(range(200))  # sealing does not parse; real keys in test_keys
SIGN_PKCS8 = b"\x30\x81" + bytes(range(100, 180))


@dataclasses.dataclass(frozen=True)
class Card:
    dek: bytes
    record: CardKeyRecord
    recovery_code: str


@cache
def issued_card() -> Card:
    """A card with two keys and every kind of slot (built once: the KDFs are the cost)."""
    dek = new_dek()
    code = new_recovery_code()
    keys = (
        seal_private_key(
            dek,
            card_id=CARD,
            role="authentication",
            version=1,
            algorithm="rsa2048",
            pkcs8=AUTH_PKCS8,
        ),
        seal_private_key(
            dek,
            card_id=CARD,
            role="content_commitment",
            version=1,
            algorithm="ecp256",
            pkcs8=SIGN_PKCS8,
        ),
    )
    slots = (
        make_passcode_slot(dek, card_id=CARD, passcode=PASSCODE, params=CHEAP, generation=1),
        *make_recovery_slots(dek, card_id=CARD, answers=ANSWERS, params=CHEAP, generation=1),
        make_recovery_code_slot(dek, card_id=CARD, recovery_code=code, generation=1),
        make_device_slot(
            dek, card_id=CARD, device_id=DEVICE_ID, device_secret=DEVICE_SECRET, generation=1
        ),
    )
    return Card(
        dek=bytes(dek),
        record=CardKeyRecord(card_id=CARD, keys=keys, slots=slots),
        recovery_code=code,
    )


# --- the record -----------------------------------------------------------------------------


def test_record_has_the_documented_slot_names() -> None:
    names = {s.name for s in issued_card().record.slots}
    assert names == {
        "passcode",
        "recovery-1-2",
        "recovery-1-3",
        "recovery-2-3",
        "recovery-code",
        "device-phone-1",
    }


def test_slot_kinds_are_lower_case_wire_values() -> None:
    assert [k.value for k in SlotKind] == [
        "passcode",
        "recovery",
        "recovery_code",
        "device",
        "invitation",
    ]


def test_record_round_trips_through_bytes() -> None:
    record = issued_card().record
    data = record.to_bytes()
    assert CardKeyRecord.from_bytes(data) == record
    assert CardKeyRecord.from_bytes(data).to_bytes() == data


def test_serialisation_is_deterministic_whatever_the_order() -> None:
    record = issued_card().record
    shuffled = dataclasses.replace(record, slots=record.slots[::-1], keys=record.keys[::-1])
    assert shuffled.to_bytes() == record.to_bytes()


def test_missing_slot_and_key_raise_not_found() -> None:
    record = issued_card().record
    with pytest.raises(SlotNotFound) as info:
        record.slot("device-other")
    assert isinstance(info.value, NotFound)
    with pytest.raises(KeyNotFound):
        record.key("encryption")


def test_key_returns_the_newest_version_unless_asked() -> None:
    card = issued_card()
    v2 = seal_private_key(
        card.dek, card_id=CARD, role="authentication", version=2, algorithm="rsa2048", pkcs8=b"k2"
    )
    record = card.record.with_key(v2)
    assert record.key("authentication").version == 2
    assert record.key("authentication", 1).version == 1


def test_with_slot_replaces_by_name_and_without_slot_removes() -> None:
    card = issued_card()
    device2 = make_device_slot(
        card.dek, card_id=CARD, device_id="phone-2", device_secret=bytes(32), generation=1
    )
    record = card.record.with_slot(device2)
    assert len(record.slots) == len(card.record.slots) + 1
    replaced = record.with_slot(dataclasses.replace(device2, generation=2))
    assert replaced.slot("device-phone-2").generation == 2
    assert len(replaced.slots) == len(record.slots)
    removed = replaced.without_slot("device-phone-2")
    assert {s.name for s in removed.slots} == {s.name for s in card.record.slots}
    with pytest.raises(SlotNotFound):
        removed.without_slot("device-phone-2")


def _mutate_json(data: bytes, change: Callable[[dict], None]) -> bytes:  # type: ignore[type-arg]
    body = json.loads(data)
    change(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update(format=2),
        lambda b: b.update(extra=1),
        lambda b: b.pop("keys"),
        lambda b: b["slots"].append(b["slots"][0]),
        lambda b: b["slots"][0].update(kind="recovery"),
        lambda b: b["slots"][0].update(generation=-1),
        lambda b: b["slots"][0].update(generation=True),
        lambda b: b["slots"][0].update(salt="not base64!"),
        lambda b: b["slots"][0].update(salt="AAAA"),
        lambda b: b["slots"][0].update(kdf={"time_cost": 0, "memory_kib": 64, "parallelism": 1}),
        lambda b: b["slots"][0].update(name="passcode2"),
        lambda b: b["keys"][0].update(algorithm="rsa1024"),
        lambda b: b["keys"][0].update(version="1"),
        lambda b: b.update(card_id=""),
    ],
)
def test_from_bytes_refuses_structurally_wrong_records(change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    with pytest.raises(RecordCorrupt) as info:
        CardKeyRecord.from_bytes(_mutate_json(issued_card().record.to_bytes(), change))
    assert isinstance(info.value, IntegrityError)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"{", b"\xff\xfe", b'{"format":1,"format":1}', b"x" * (256 * 1024 + 1)],
)
def test_from_bytes_refuses_garbage_and_oversized_input(data: bytes) -> None:
    with pytest.raises(RecordCorrupt):
        CardKeyRecord.from_bytes(data)


def test_from_bytes_refuses_non_canonical_form() -> None:
    data = issued_card().record.to_bytes()
    with pytest.raises(RecordCorrupt, match="canonical"):
        CardKeyRecord.from_bytes(json.dumps(json.loads(data), indent=1).encode())


def _opens_everything(record: CardKeyRecord, card: Card) -> bool:
    """True when every slot opens to the DEK and every key to its plaintext."""
    try:
        deks = [
            open_passcode_slot(record, PASSCODE),
            open_recovery_slots(record, {1: ANSWERS[0], 2: ANSWERS[1]}),
            open_recovery_slots(record, {1: ANSWERS[0], 3: ANSWERS[2]}),
            open_recovery_slots(record, {2: ANSWERS[1], 3: ANSWERS[2]}),
            open_recovery_code_slot(record, card.recovery_code),
            open_device_slot(record, DEVICE_ID, DEVICE_SECRET),
        ]
        plain = [open_private_key(card.dek, card_id=record.card_id, sealed=k) for k in record.keys]
    except (WrongSecret, SealBroken, NotFound):
        return False
    return all(d == card.dek for d in deks) and sorted(map(bytes, plain)) == sorted(
        [AUTH_PKCS8, SIGN_PKCS8]
    )


def test_untouched_record_opens_everything() -> None:
    card = issued_card()
    assert _opens_everything(CardKeyRecord.from_bytes(card.record.to_bytes()), card)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_changed_byte_anywhere_in_the_serialised_record_fails(data: st.DataObject) -> None:
    card = issued_card()
    blob = bytearray(card.record.to_bytes())
    position = data.draw(st.integers(0, len(blob) - 1), label="position")
    blob[position] = data.draw(
        st.integers(0, 255).filter(lambda b: b != blob[position]), label="byte"
    )
    try:
        record = CardKeyRecord.from_bytes(bytes(blob))
    except RecordCorrupt:
        return
    assert not _opens_everything(record, card)


# --- sealed keys ----------------------------------------------------------------------------


def test_sealed_key_opens_with_the_dek() -> None:
    card = issued_card()
    assert (
        open_private_key(card.dek, card_id=CARD, sealed=card.record.key("authentication"))
        == AUTH_PKCS8
    )


@given(data=st.data())
def test_a_changed_byte_in_a_sealed_key_fails(data: st.DataObject) -> None:
    card = issued_card()
    sealed = card.record.key("content_commitment")
    blob = bytearray(sealed.blob)
    blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealBroken):
        open_private_key(
            card.dek, card_id=CARD, sealed=dataclasses.replace(sealed, blob=bytes(blob))
        )


@pytest.mark.parametrize(
    ("card_id", "changes"),
    [
        ("card-0002", {}),
        (CARD, {"role": "content_commitment"}),
        (CARD, {"version": 2}),
        (CARD, {"algorithm": "rsa3072"}),
    ],
)
def test_sealed_key_moved_to_another_card_role_or_version_fails(
    card_id: str, changes: dict
) -> None:  # type: ignore[type-arg]
    card = issued_card()
    moved = dataclasses.replace(card.record.key("authentication"), **changes)
    with pytest.raises(SealBroken):
        open_private_key(card.dek, card_id=card_id, sealed=moved)


def test_sealed_key_with_wrong_dek_fails() -> None:
    with pytest.raises(SealBroken):
        open_private_key(new_dek(), card_id=CARD, sealed=issued_card().record.key("authentication"))


# --- passcode -------------------------------------------------------------------------------


def test_right_passcode_opens_the_dek() -> None:
    card = issued_card()
    assert open_passcode_slot(card.record, PASSCODE) == card.dek


def test_passcode_is_nfkc_normalised() -> None:
    dek = new_dek()
    slot = make_passcode_slot(
        dek, card_id=CARD, passcode="caf\u00e9\uff11", params=CHEAP, generation=1
    )
    record = CardKeyRecord(card_id=CARD, keys=(), slots=(slot,))
    assert open_passcode_slot(record, "cafe\u0301" + "1") == dek


@pytest.mark.parametrize("wrong", ["correct horse batterY", "correct horse battery ", "x"])
def test_wrong_passcode_raises_wrong_secret(wrong: str) -> None:
    with pytest.raises(WrongSecret) as info:
        open_passcode_slot(issued_card().record, wrong)
    assert info.value.code == "wrong_secret"
    assert isinstance(info.value, AuthenticationFailed)


def test_empty_passcode_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        make_passcode_slot(new_dek(), card_id=CARD, passcode="", params=CHEAP, generation=1)


def test_passcode_change_keeps_the_same_keys() -> None:
    card = issued_card()
    dek = open_passcode_slot(card.record, PASSCODE)
    new_slot = make_passcode_slot(
        dek, card_id=CARD, passcode="new passcode 2", params=CHEAP, generation=2
    )
    changed = CardKeyRecord.from_bytes(card.record.with_slot(new_slot).to_bytes())
    assert changed.keys == card.record.keys
    with pytest.raises(WrongSecret):
        open_passcode_slot(changed, PASSCODE)
    dek2 = open_passcode_slot(changed, "new passcode 2")
    assert open_private_key(dek2, card_id=CARD, sealed=changed.key("authentication")) == AUTH_PKCS8


def test_passcode_slot_stores_its_kdf_params() -> None:
    slot = issued_card().record.slot("passcode")
    assert slot.kdf == CHEAP
    assert slot.kind is SlotKind.PASSCODE
    assert len(slot.salt) == 16


def test_slot_moved_to_another_card_fails() -> None:
    card = issued_card()
    other = CardKeyRecord(card_id="card-0002", keys=(), slots=(card.record.slot("passcode"),))
    with pytest.raises(WrongSecret):
        open_passcode_slot(other, PASSCODE)


def test_renamed_slot_fails() -> None:
    card = issued_card()
    slot = card.record.slot("recovery-1-2")
    renamed = dataclasses.replace(slot, name="recovery-1-3")
    record = (
        card.record.without_slot("recovery-1-3").with_slot(renamed).without_slot("recovery-1-2")
    )
    with pytest.raises(WrongSecret):
        open_recovery_slots(record, {1: ANSWERS[0], 2: ANSWERS[1], 3: "wrong"})


def test_slot_with_changed_generation_fails() -> None:
    card = issued_card()
    slot = dataclasses.replace(card.record.slot("passcode"), generation=2)
    with pytest.raises(WrongSecret):
        open_passcode_slot(card.record.with_slot(slot), PASSCODE)


@KDF_SETTINGS
@given(data=st.data())
def test_a_changed_byte_in_a_slot_fails(data: st.DataObject) -> None:
    card = issued_card()
    slot = card.record.slot("passcode")
    field = data.draw(st.sampled_from(["salt", "wrapped_dek"]))
    raw = bytearray(getattr(slot, field))
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    changed = card.record.with_slot(dataclasses.replace(slot, **{field: bytes(raw)}))
    with pytest.raises(WrongSecret):
        open_passcode_slot(changed, PASSCODE)


def test_slot_validation_refuses_inconsistent_slots() -> None:
    slot = issued_card().record.slot("passcode")
    with pytest.raises(InvalidInput):
        dataclasses.replace(slot, kdf=None)
    with pytest.raises(InvalidInput):
        dataclasses.replace(slot, kind=SlotKind.DEVICE)
    with pytest.raises(InvalidInput):
        dataclasses.replace(slot, salt=b"short")
    with pytest.raises(InvalidInput):
        CardKeyRecord(card_id=CARD, keys=(), slots=(slot, slot))


# --- security answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Main   Street ", "main street"),
        ("MAIN\tSTREET\n", "main street"),
        ("Straße", "strasse"),
        ("\uff32\uff25\uff38", "rex"),
        ("e\u0301", "é"),
        ("\ufb01do", "fido"),
    ],
)
def test_normalize_answer(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal


@given(st.text())
def test_normalize_answer_is_idempotent(text: str) -> None:
    assert normalize_answer(normalize_answer(text)) == normalize_answer(text)


def _variant(answer: str, style: int) -> str:
    """A spelling that normalises to the same answer."""
    return [
        answer,
        answer.upper(),
        f"  {answer}  ",
        answer.replace(" ", "\t  "),
        answer.swapcase(),
    ][style]


@KDF_SETTINGS
@given(
    pair=st.sampled_from([(1, 2), (1, 3), (2, 3)]),
    styles=st.tuples(st.integers(0, 4), st.integers(0, 4)),
)
def test_any_two_right_answers_open_the_card(
    pair: tuple[int, int], styles: tuple[int, int]
) -> None:
    card = issued_card()
    given_answers = {q: _variant(ANSWERS[q - 1], s) for q, s in zip(pair, styles, strict=True)}
    assert open_recovery_slots(card.record, given_answers) == card.dek


@KDF_SETTINGS
@given(right=st.integers(1, 3), wrong=st.text(min_size=1, max_size=12), data=st.data())
def test_one_right_answer_does_not_open_the_card(
    right: int, wrong: str, data: st.DataObject
) -> None:
    card = issued_card()
    others = [q for q in (1, 2, 3) if q != right]
    answers = {right: ANSWERS[right - 1]}
    for q in others:
        if normalize_answer(wrong) != normalize_answer(ANSWERS[q - 1]):
            answers[q] = wrong
    if len(answers) < 2:
        return
    with pytest.raises(WrongSecret):
        open_recovery_slots(card.record, answers)


def test_card_without_recovery_slots_is_not_found() -> None:
    record = CardKeyRecord(card_id=CARD, keys=(), slots=(issued_card().record.slot("passcode"),))
    with pytest.raises(SlotNotFound):
        open_recovery_slots(record, {1: "a", 2: "b"})


def test_three_answers_with_one_wrong_still_open() -> None:
    card = issued_card()
    assert open_recovery_slots(card.record, {1: "wrong", 2: ANSWERS[1], 3: ANSWERS[2]}) == card.dek


@pytest.mark.parametrize("answers", [{1: "Rex"}, {}, {1: "Rex", 4: "x"}, {0: "a", 1: "Rex"}])
def test_fewer_than_two_or_unknown_questions_are_invalid(answers: dict[int, str]) -> None:
    with pytest.raises(InvalidInput):
        open_recovery_slots(issued_card().record, answers)


@pytest.mark.parametrize("answers", [("a", "b"), ("a", "b", "c", "d"), ("a", "  ", "c"), "abc"])
def test_make_recovery_slots_needs_three_non_empty_answers(answers: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput):
        make_recovery_slots(new_dek(), card_id=CARD, answers=answers, params=CHEAP, generation=1)


def test_answer_pairs_are_separated_unambiguously() -> None:
    """("ab","c") and ("a","bc") must derive different keys: the 0x00 separator."""
    dek = new_dek()
    slots = make_recovery_slots(
        dek, card_id=CARD, answers=("ab", "c", "z"), params=CHEAP, generation=1
    )
    record = CardKeyRecord(card_id=CARD, keys=(), slots=slots)
    with pytest.raises(WrongSecret):
        open_recovery_slots(record, {1: "a", 2: "bc"})


# --- recovery code --------------------------------------------------------------------------


def test_recovery_code_is_160_bits_in_groups_of_four() -> None:
    code = new_recovery_code()
    groups = code.split("-")
    assert len(groups) == 8
    assert all(len(g) == 4 and set(g) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for g in groups)
    assert new_recovery_code() != code


def test_recovery_code_opens_with_sloppy_typing() -> None:
    card = issued_card()
    sloppy = card.recovery_code.lower().replace("-", " ")
    assert open_recovery_code_slot(card.record, sloppy) == card.dek


def test_wrong_recovery_code_raises_wrong_secret() -> None:
    with pytest.raises(WrongSecret):
        open_recovery_code_slot(issued_card().record, new_recovery_code())


@pytest.mark.parametrize("code", ["", "ABCD-EFGH", "ABCD-EFGH-0000-1111-ABCD-EFGH-ABCD-EFGH"])
def test_malformed_recovery_code_is_invalid_input(code: str) -> None:
    with pytest.raises(InvalidInput):
        open_recovery_code_slot(issued_card().record, code)


# --- device ---------------------------------------------------------------------------------


def test_device_secret_opens_its_slot() -> None:
    card = issued_card()
    assert open_device_slot(card.record, DEVICE_ID, DEVICE_SECRET) == card.dek


def test_wrong_device_secret_raises_wrong_secret() -> None:
    with pytest.raises(WrongSecret):
        open_device_slot(issued_card().record, DEVICE_ID, bytes(32))


def test_unknown_device_is_not_found() -> None:
    with pytest.raises(SlotNotFound):
        open_device_slot(issued_card().record, "phone-9", DEVICE_SECRET)


@pytest.mark.parametrize(
    ("device_id", "secret"), [("bad id", DEVICE_SECRET), ("", DEVICE_SECRET), (DEVICE_ID, b"short")]
)
def test_bad_device_id_or_secret_is_invalid_input(device_id: str, secret: bytes) -> None:
    with pytest.raises(InvalidInput):
        make_device_slot(
            new_dek(), card_id=CARD, device_id=device_id, device_secret=secret, generation=1
        )


def test_device_slot_renamed_to_another_device_fails() -> None:
    card = issued_card()
    renamed = dataclasses.replace(card.record.slot("device-phone-1"), name="device-phone-2")
    with pytest.raises(WrongSecret):
        open_device_slot(card.record.with_slot(renamed), "phone-2", DEVICE_SECRET)


# --- session keys ---------------------------------------------------------------------------


def test_session_wrap_round_trips() -> None:
    dek, sk = new_dek(), new_session_key()
    blob = wrap_for_session(dek, sk, session_id="s-1")
    assert unwrap_session(blob, sk, session_id="s-1") == dek


@given(wrong=st.binary(min_size=32, max_size=32))
def test_session_unwrap_with_a_wrong_sk_fails(wrong: bytes) -> None:
    dek, sk = new_dek(), new_session_key()
    blob = wrap_for_session(dek, sk, session_id="s-1")
    if wrong == sk:
        return
    with pytest.raises(WrongSecret):
        unwrap_session(blob, wrong, session_id="s-1")


def test_session_unwrap_under_another_session_id_fails() -> None:
    dek, sk = new_dek(), new_session_key()
    blob = wrap_for_session(dek, sk, session_id="s-1")
    with pytest.raises(WrongSecret):
        unwrap_session(blob, sk, session_id="s-2")


@pytest.mark.parametrize("sk", [b"", bytes(16), bytes(31)])
def test_session_unwrap_with_a_short_sk_fails(sk: bytes) -> None:
    blob = wrap_for_session(new_dek(), new_session_key(), session_id="s-1")
    with pytest.raises(WrongSecret):
        unwrap_session(blob, sk, session_id="s-1")


def test_keys_and_slots_are_frozen() -> None:
    card = issued_card()
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.record.slots[0].generation = 5  # type: ignore[misc]
    assert isinstance(card.record.keys[0], SealedKey)
    assert isinstance(card.record.slots[0], KeySlot)


def test_real_card_key_survives_seal_open_load_and_signs() -> None:
    card = issued_card()
    pkcs8 = private_key_to_pkcs8(generate_private_key(KeyAlgorithm.ECP256))
    sealed = seal_private_key(
        card.dek, card_id=CARD, role="authentication", version=2, algorithm="ecp256", pkcs8=pkcs8
    )
    record = CardKeyRecord.from_bytes(card.record.with_key(sealed).to_bytes())
    dek = open_passcode_slot(record, PASSCODE)
    opened = open_private_key(dek, card_id=CARD, sealed=record.key("authentication"))
    assert opened == pkcs8
    key = load_private_key(opened, trusted=True)
    assert sign_message(key, b"challenge", SignatureScheme.ECDSA)
