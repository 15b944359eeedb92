"""The CHUID with and without its issuer signature, as hex (SP 800-73-4 Part 1 §3.1.2)."""

import pytest

from cardvault.card.piv import objects

GUID = bytes(range(16))
FASC_N = "D4E739DA739CED39CE739D836858210842108421C84210C3EB"


def test_the_signed_content_is_fasc_n_guid_and_expiry() -> None:
    content = objects.chuid_signed_content(guid=GUID, expiry="20301231")
    assert content.hex().upper() == (
        "3019" + FASC_N + "3410" + GUID.hex().upper() + "3508" + b"20301231".hex().upper()
    )


def test_the_signature_follows_the_signed_content_then_the_error_detection_code() -> None:
    content = objects.chuid_signed_content(guid=GUID, expiry="20301231")
    signed = objects.chuid(guid=GUID, expiry="20301231", signature=bytes.fromhex("3003020101"))
    assert signed == content + bytes.fromhex("3E05 3003020101 FE00")
    assert objects.chuid(guid=GUID, expiry="20301231") == content + bytes.fromhex("3E00FE00")


@pytest.mark.parametrize(("guid", "expiry"), [(bytes(15), "20301231"), (GUID, "2030-12")])
def test_a_malformed_guid_or_expiry_is_refused(guid: bytes, expiry: str) -> None:
    with pytest.raises(ValueError, match="16-byte GUID"):
        objects.chuid_signed_content(guid=guid, expiry=expiry)


CARD_UUID = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
#: a FASC-N of a federal agency (agency code 1234), which OpenSC prefers to any GUID
FEDERAL_FASC_N = bytes.fromhex("D0439C0D5B1A21B4295A8210842108421C84210D0843108A5D")


def test_the_token_serial_is_the_guids_last_16_hex_digits_under_agency_9999() -> None:
    chuid = objects.chuid(guid=CARD_UUID, expiry="20301231")
    assert objects.token_serial(chuid) == "8796a5b4c3d2e1f0"


def test_a_federal_fasc_n_names_the_token_instead_of_the_guid() -> None:
    chuid = bytes.fromhex("3019") + FEDERAL_FASC_N + bytes.fromhex("3410") + CARD_UUID
    assert objects.token_serial(chuid) == "84210d0843108a5d"  # the FASC-N's last 8 bytes


def test_a_zero_guid_falls_back_to_the_fasc_n_and_nothing_gives_none() -> None:
    chuid = objects.chuid(guid=bytes(16), expiry="20301231")
    assert objects.token_serial(chuid) == FASC_N[-16:].lower()
    assert objects.token_serial(bytes.fromhex("3500")) is None
    assert objects.token_serial(bytes.fromhex("34")) is None  # malformed
