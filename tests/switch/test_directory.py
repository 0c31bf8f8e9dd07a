"""The directory: the recorded REGISTER and user_data lookups, answered from real devices."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.storage.crypto import seal
from c2bot.storage.models import Account, SipDevice
from c2bot.switch import directory
from tests.conftest import World, test_settings
from tests.support.xmlcurl import is_not_found, parse_document, recorded_posts

REGISTER, USER_DATA = (post.params for post in recorded_posts("xml_curl_directory.txt"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The recording's domain is 127.0.0.1: every account's SIP domain is that here."""
    return test_settings(database_url, C2_SIP_DOMAIN="127.0.0.1")


async def add_device(services: Services, account: str, username: str, **fields: Any) -> None:
    fields.setdefault("extension", "100")
    password = fields.pop("password", "1234")
    async with services.sessions.begin() as session:
        owner = await session.scalar(select(Account).where(Account.number == account))
        assert owner is not None
        sealed = seal(services.settings, password)
        session.add(
            SipDevice(account_id=owner.id, username=username, password_sealed=sealed, **fields)
        )


async def ask(
    services: Services, params: dict[str, str], settings: Settings | None = None
) -> Element:
    answer = await directory.answer(services.sessions, settings or services.settings, params)
    return parse_document(answer)


def user_params(document: Element, tag: str = "params/param") -> dict[str, str]:
    user = document.find("section[@name='directory']/domain/groups/group/users/user")
    assert user is not None, "no user in the answer"
    return {p.get("name", ""): p.get("value", "") for p in user.findall(tag)}


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


async def test_register_lookup_serves_the_digest_the_phone_used(
    services: Services, world: World
) -> None:
    """The recorded REGISTER of 1000@127.0.0.1 (password 1234) verifies against our a1-hash."""
    await add_device(services, "1001", "1000")
    document = await ask(services, REGISTER)
    domain = document.find("section[@name='directory']/domain")
    assert domain is not None and domain.get("name") == "127.0.0.1"
    user = domain.find("groups/group[@name='c2-1001']/users/user")
    assert user is not None and user.get("id") == "1000"
    params = user_params(document)
    assert "password" not in params  # the plain password never leaves c2bot
    ha2 = md5(f"{REGISTER['sip_auth_method']}:{REGISTER['sip_auth_uri']}")
    fields = ("sip_auth_nonce", "sip_auth_nc", "sip_auth_cnonce", "sip_auth_qop")
    response = md5(":".join([params["a1-hash"], *(REGISTER[f] for f in fields), ha2]))
    assert response == REGISTER["sip_auth_response"] == "6cef59254fd1b3ead193b9285d4a9930"


async def test_a1_hash_follows_the_challenged_realm(services: Services, world: World) -> None:
    """When FreeSWITCH challenged with another realm, the hash is made with that realm."""
    await add_device(services, "1001", "1000", password="s3cret")
    params = REGISTER | {"sip_auth_realm": "pbx.example.net"}
    assert user_params(await ask(services, params))["a1-hash"] == md5("1000:pbx.example.net:s3cret")


async def test_user_data_lookup_carries_the_call_variables(
    services: Services, world: World
) -> None:
    """`api user_data 1000@127.0.0.1 ...` (recorded) gets the account, caller id and codecs."""
    await add_device(
        services,
        "1001",
        "1000",
        extension="100",
        caller_number="+31201234500",
        caller_name="Jan Jansen",
        codecs="PCMA, G722 ,OPUS",
        record_calls=True,
    )
    document = await ask(services, USER_DATA)
    variables = user_params(document, "variables/variable")
    assert variables == {
        "user_context": "c2-1001",
        "accountcode": "1001",
        "effective_caller_id_number": "+31201234500",
        "effective_caller_id_name": "Jan Jansen",
        "outbound_caller_id_number": "+31201234500",
        "outbound_caller_id_name": "Jan Jansen",
        "c2_account": "1001",
        "c2_device": "1000",
        "c2_extension": "100",
        "c2_record_calls": "true",
        "codec_string": "PCMA,G722,OPUS",
    }
    dial = document.find("section/domain/params/param[@name='dial-string']")
    assert dial is not None and "sofia_contact(*/${dialed_user}@${dialed_domain})" in dial.get(
        "value", ""
    )


async def test_caller_id_falls_back_to_extension_and_username(
    services: Services, world: World
) -> None:
    """Without caller number or name a device shows its extension and username inside the
    account, and no outbound caller id."""
    await add_device(services, "1001", "1000", extension="104", codecs="")
    variables = user_params(await ask(services, USER_DATA), "variables/variable")
    assert variables["effective_caller_id_number"] == "104"
    assert variables["effective_caller_id_name"] == "1000"
    assert variables["c2_record_calls"] == "false"
    assert "codec_string" not in variables
    assert not {"outbound_caller_id_number", "outbound_caller_id_name"} & variables.keys()


async def test_voicemail_box(services: Services, world: World) -> None:
    """Voicemail on: PIN and mail address; off: only vm-enabled=false."""
    await add_device(
        services,
        "1001",
        "1000",
        voicemail=True,
        voicemail_pin="4321",
        voicemail_email="jan@acme.nl",
    )
    await add_device(services, "1001", "1001-101", extension="101", voicemail_pin="9999")
    on = user_params(await ask(services, USER_DATA))
    assert on["vm-enabled"] == "true"
    assert on["vm-password"] == "4321"
    assert on["vm-mailto"] == "jan@acme.nl"
    assert on["vm-email-all-messages"] == on["vm-attach-file"] == "true"
    off = user_params(await ask(services, USER_DATA | {"user": "1001-101"}))
    assert off["vm-enabled"] == "false"
    assert not {"vm-password", "vm-mailto"} & off.keys()


async def test_names_with_markup_are_escaped(services: Services, world: World) -> None:
    """A caller name with < & " comes back exactly, escaped by the XML library."""
    await add_device(services, "1001", "1000", caller_name='Anna <&"> BV')
    raw = await directory.answer(services.sessions, services.settings, USER_DATA)
    assert b"&lt;&amp;&quot;&gt;" in raw
    variables = user_params(parse_document(raw), "variables/variable")
    assert variables["effective_caller_id_name"] == 'Anna <&"> BV'


async def test_unknown_users_are_not_found(services: Services, world: World) -> None:
    """Anything but an existing device by id is "not found" (FreeSWITCH falls back)."""
    await add_device(services, "1001", "1000")
    for change in [
        {"user": "1001"},  # nobody by that name
        {"user": ""},
        {"user": "1000 "},
        {"key": "number-alias"},
        {"section": "dialplan"},
    ]:
        assert is_not_found(await ask(services, REGISTER | change)), change
    params = {k: v for k, v in REGISTER.items() if k not in ("user", "key")}
    assert is_not_found(await ask(services, params | {"purpose": "gateways"}))  # domain only


async def test_disabled_device_is_not_found(services: Services, world: World) -> None:
    """A disabled device cannot register or be called."""
    await add_device(services, "1001", "1000", enabled=False)
    assert is_not_found(await ask(services, REGISTER))


async def test_domain_must_be_the_accounts(services: Services, world: World) -> None:
    """With per-account SIP domains a device answers only in its own account's domain."""
    await add_device(services, "1001", "1000")
    per_account = services.settings.model_copy(update={"sip_domain": "{account}.sip.c2.test"})
    assert is_not_found(await ask(services, REGISTER, per_account))  # 127.0.0.1
    wrong = REGISTER | {"domain": "1002.sip.c2.test", "sip_auth_realm": "1002.sip.c2.test"}
    assert is_not_found(await ask(services, wrong, per_account))
    right = REGISTER | {"domain": "1001.SIP.c2.test", "sip_auth_realm": "1001.sip.c2.test"}
    document = await ask(services, right, per_account)
    assert user_params(document)["a1-hash"] == md5("1000:1001.sip.c2.test:1234")
    domain = document.find("section/domain")
    assert domain is not None and domain.get("name") == "1001.SIP.c2.test"
