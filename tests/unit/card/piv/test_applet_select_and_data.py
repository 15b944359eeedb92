"""SELECT, GET DATA, PUT DATA, GET RESPONSE, chaining and the YubiKey informational commands,
with the APDUs OpenSC 0.23 and yubico-piv-tool 2.2 send (docs: shared notes pcsc-harness §3/§4)."""

import pytest
from tests.support.piv_fakes import Card, verify_apdu

from cardvault.card import tlv
from cardvault.card.piv import ObjectId, objects
from cardvault.card.piv.constants import APPLET_VERSION

DISCOVERY = "7E124F0BA0000003080000100001005F2F024000"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("apdu", "answer"),
    [
        ("00A4040007627601FF000000", "6A82"),  # coolkey
        ("00A4040006A00000000101", "6A82"),  # muscle
        ("00A404000BE82B0601040181C31F0201", "6A82"),  # sc-hsm
        ("00A4040C0FD23300000045737445494420763335", "6A82"),  # EstEID
        ("00CADF3005", "6D00"),  # setcos
    ],
)
def test_other_drivers_probes_fail_and_piv_stays_selected(
    card: Card, apdu: str, answer: str
) -> None:
    assert card.send(apdu) == h(answer)
    assert card.send("00CB3FFF035C017E00") == h(DISCOVERY + "9000")


def test_select_piv_answers_the_application_property_template(card: Card) -> None:
    answer = card.send("00A4040009A00000030800001000")
    assert answer[-2:] == h("9000")
    template = tlv.decode_map(tlv.decode_single(answer[:-2], 0x61))
    assert template[0x4F] == h("000010000100")
    assert template[0x79] == h("4F05A000000308")
    algorithms = tlv.decode(template[0xAC])
    assert [item.value for item in algorithms if item.tag == 0x80][:2] == [b"\x03", b"\x08"]


def test_yubico_piv_tool_connect_sequence(card: Card) -> None:
    """yubico-piv-tool 2.2 with a card below version 5: the serial from the OTP application."""
    assert card.send("00A4040005A000000308")[-2:] == h("9000")
    assert card.send("0020008000") == h("63C3")
    assert card.send("00FD000000") == h("0001009000")  # cardvault 0.1.0
    assert card.send("00A4040008A000000527200101") == h("9000")  # OTP application
    assert card.send("0001100000") == h("00BC614E9000")  # its serial request: 12345678
    assert card.send("00A4040005A000000308")[-2:] == h("9000")
    assert card.send("00CB3FFF035C017E") == h(DISCOVERY + "9000")


def test_get_serial_answers_the_same_serial_as_yubikey_5_ask_it(card: Card) -> None:
    assert card.send("00F8000000") == h("00BC614E9000")


def test_the_otp_application_answers_only_its_serial_request(card: Card) -> None:
    assert card.send("0001130000") == h("6A86")
    assert card.send("00CB3FFF035C017E") == h(DISCOVERY + "9000")  # PIV was never left


def test_the_version_is_cardvaults() -> None:
    from cardvault import __version__

    assert ".".join(str(part) for part in APPLET_VERSION) == __version__


def test_select_with_p2_0c_returns_no_data(card: Card) -> None:
    assert card.send("00A4040C05A000000308") == h("9000")


def test_select_by_file_id_is_refused(card: Card) -> None:
    assert card.send("00A40000023F00") == h("6A86")


def test_get_data_without_le_still_returns_the_object(card: Card) -> None:
    answer = card.send("00CB3FFF055C035FC107")
    assert answer == tlv.encode(
        0x53, card.state.object(ObjectId.CARD_CAPABILITY_CONTAINER) or b""
    ) + h("9000")


def test_get_data_with_a_short_le_answers_in_pieces_like_opensc_reads_it(card: Card) -> None:
    chuid = tlv.encode(0x53, objects.chuid(guid=bytes(range(16))))
    first = card.send("00CB3FFF055C035FC10208")
    assert first == chuid[:8] + bytes((0x61, len(chuid) - 8))
    rest = card.send(bytes((0, 0xC0, 0, 0, len(chuid) - 8)))
    assert rest == chuid[8:] + h("9000")


def test_get_response_without_pending_data_is_refused(card: Card) -> None:
    assert card.send("00C0000000") == h("6985")


def test_absent_and_pin_protected_objects(card: Card) -> None:
    assert card.send("00CB3FFF055C035FC105") == h("6A82")
    assert card.send("00CB3FFF055C035FC108") == h("6982")
    card.send(verify_apdu())
    assert card.send("00CB3FFF055C035FC108") == h("6A82")


def test_get_data_with_wrong_p1p2_or_malformed_tag_list(card: Card) -> None:
    assert card.send("00CB3FFE035C017E") == h("6A86")
    assert card.send("00CB3FFF035D017E") == h("6A80")
    assert card.send("00CB3FFF065C045FC10201") == h("6A80")


def test_put_data_needs_the_management_key(card: Card) -> None:
    assert card.send("00DB3FFF0A5C035FC1095303010203") == h("6982")
    assert card.authenticate() == 0x9000
    assert card.send("00DB3FFF0A5C035FC1095303010203") == h("9000")
    assert card.state.object(ObjectId.PRINTED_INFORMATION) == h("010203")


def test_put_data_with_an_empty_container_deletes(card: Card) -> None:
    card.authenticate()
    assert card.send("00DB3FFF075C035FC1075300") == h("9000")
    assert card.state.object(ObjectId.CARD_CAPABILITY_CONTAINER) is None
    assert card.send("00CB3FFF055C035FC107") == h("6A82")


def test_put_data_refuses_discovery_and_unknown_objects(card: Card) -> None:
    card.authenticate()
    assert card.send("00DB3FFF055C017E5300") == h("6A80")
    assert card.send("00DB3FFF075C035FC2015301AA"[:-2]) == h("6A80")
    assert card.send("00DB3FFF045300 5C00".replace(" ", "")) == h("6A80")


def test_put_data_refuses_objects_larger_than_the_card_holds(card: Card) -> None:
    card.authenticate()
    body = tlv.encode(0x5C, h("5FC105")) + tlv.encode(0x53, bytes(5000))
    apdu = h("00DB3FFF00") + len(body).to_bytes(2, "big") + body
    assert card.send(apdu) == h("6A84")


def test_a_certificate_written_with_chaining_reads_back_with_get_response(card: Card) -> None:
    card.authenticate()
    container = objects.certificate_container(bytes(range(256)) * 4)
    body = tlv.encode(0x5C, h("5FC105")) + tlv.encode(0x53, container)
    chunks = [body[i : i + 255] for i in range(0, len(body), 255)]
    for chunk in chunks[:-1]:
        assert card.send(h("10DB3FFF") + bytes((len(chunk),)) + chunk) == h("9000")
    last = chunks[-1]
    assert card.send(h("00DB3FFF") + bytes((len(last),)) + last) == h("9000")
    first = card.send("00CB3FFF055C035FC10500")
    assert first[-2:] == h("6100")
    data, sw = card.transmit("00CB3FFF055C035FC10500")
    assert sw == 0x9000
    assert objects.certificate(tlv.decode_single(data, 0x53)) == bytes(range(256)) * 4


def test_an_interrupted_chain_is_dropped(card: Card) -> None:
    card.authenticate()
    assert card.send("10DB3FFF055C035FC109") == h("9000")
    assert card.send("00CB3FFF035C017E") == h(DISCOVERY + "9000")
    assert card.state.pending_chain is None
    assert card.send("00DB3FFF0553035F0102") == h("6A80")


def test_extended_length_get_data_returns_everything_at_once(card: Card) -> None:
    card.authenticate()
    content = bytes(1000)
    body = tlv.encode(0x5C, h("5FC109")) + tlv.encode(0x53, content)
    assert card.send(h("00DB3FFF00") + len(body).to_bytes(2, "big") + body) == h("9000")
    card.send(verify_apdu())
    answer = card.send(h("00CB3FFF0000055C035FC1090000"))
    assert answer == tlv.encode(0x53, content) + h("9000")


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [("0CCB3FFF035C017E", "6882"), ("80CB3FFF035C017E", "6E00"), ("0012000000", "6D00")],
)
def test_unsupported_class_and_instruction(card: Card, apdu: str, sw: str) -> None:
    assert card.send(apdu) == h(sw)


def test_nothing_waits_once_get_response_has_handed_out_the_last_piece(card: Card) -> None:
    """The last piece ends the response; the state keeps no copy of it (a status query that
    follows then changes nothing, which lets the connector answer it, see answers.py)."""
    card.state = card.state.with_object(
        ObjectId.CERT_PIV_AUTHENTICATION, objects.certificate_container(bytes(300))
    )
    assert card.send("00CB3FFF055C035FC10500")[-2] == 0x61
    assert card.send("00C0000000")[-2:] == h("9000")
    assert card.state.pending_response == b""
    assert card.send("00C0000000") == h("6985")
