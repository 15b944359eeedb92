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
