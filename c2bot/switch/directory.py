"""The directory FreeSWITCH asks us for: a SIP device's digest credentials, its voicemail box and
the channel variables its calls carry (account, context, caller id, codecs, recording).

One lookup serves every directory action (`sip_auth` for REGISTER and INVITE, `user_call` for
`user/NAME@DOMAIN`, `message-count`, `user_data`): FreeSWITCH takes what it needs from the user.

The credential is `a1-hash` (MD5 of `user:realm:password`, what digest authentication checks)
rather than `password`: the plain password then never leaves c2bot, neither over this HTTP
call nor into FreeSWITCH's memory, logs or `user_data` answers. The realm is the one
FreeSWITCH challenged with (`sip_auth_realm`), which by default is the domain the phone uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from xml.etree.ElementTree import Element, SubElement

from sqlalchemy import select

from c2bot.config.settings import Settings
from c2bot.storage.crypto import unseal
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import SipDevice
from c2bot.switch.targets import account_context, sip_domain
from c2bot.switch.xmldoc import document, not_found, param, render

# FreeSWITCH's own default: ring every registered contact of the user on any sofia profile.
DIAL_STRING = (
    "{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}"
    "${sofia_contact(*/${dialed_user}@${dialed_domain})}"
)


async def answer(sessions: SessionFactory, settings: Settings, params: Mapping[str, str]) -> bytes:
    """The directory document for the device the request names, or "not found"."""
    user = params.get("user", "")
    domain = params.get("domain") or params.get("key_value", "")
    if params.get("section", "directory") != "directory" or not user or not domain:
        return not_found()
    if params.get("key", "id") != "id":
        return not_found()  # number-alias and other keys: we name devices by id only
    async with sessions() as session:
        device = await session.scalar(
            select(SipDevice).where(SipDevice.username == user, SipDevice.enabled)
        )
    if device is None or sip_domain(settings, device.account.number).lower() != domain.lower():
        return not_found()
    realm = params.get("sip_auth_realm") or domain
    password = unseal(settings, device.password_sealed)
    return render(_document(device, domain, a1_hash(user, realm, password)))


def a1_hash(user: str, realm: str, password: str) -> str:
    """HA1 of RFC 2617 digest authentication."""
    text = f"{user}:{realm}:{password}".encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


def _document(device: SipDevice, domain: str, a1: str) -> Element:
    root, section = document("directory")
    domain_element = SubElement(section, "domain", name=domain)
    param(SubElement(domain_element, "params"), "dial-string", DIAL_STRING)
    context = account_context(device.account.number)
    group = SubElement(SubElement(domain_element, "groups"), "group", name=context)
    user = SubElement(SubElement(group, "users"), "user", id=device.username)
    params = SubElement(user, "params")
    param(params, "a1-hash", a1)
    _voicemail(params, device)
    variables = SubElement(user, "variables")
    for name, value in _variables(device, context):
        param(variables, name, value, tag="variable")
    return root


def _voicemail(params: Element, device: SipDevice) -> None:
    param(params, "vm-enabled", _flag(device.voicemail))
    if not device.voicemail:
        return
    if device.voicemail_pin:
        param(params, "vm-password", device.voicemail_pin)
    if device.voicemail_email:
        param(params, "vm-mailto", device.voicemail_email)
        param(params, "vm-email-all-messages", "true")
        param(params, "vm-attach-file", "true")
        param(params, "vm-keep-local-after-email", "true")


def _variables(device: SipDevice, context: str) -> list[tuple[str, str]]:
    number = device.account.number
    variables = [
        ("user_context", context),
        ("accountcode", number),
        ("effective_caller_id_number", device.caller_number or device.extension),
        ("effective_caller_id_name", device.caller_name or device.username),
    ]
    # Outside the account a device shows its caller number, never its extension.
    if device.caller_number:
        variables.append(("outbound_caller_id_number", device.caller_number))
    if device.caller_name:
        variables.append(("outbound_caller_id_name", device.caller_name))
    variables += [
        ("c2_account", number),
        ("c2_device", device.username),
        ("c2_extension", device.extension),
        ("c2_record_calls", _flag(device.record_calls)),
    ]
    codecs = ",".join(part.strip() for part in device.codecs.split(",") if part.strip())
    if codecs:
        variables.append(("codec_string", codecs))
    return variables


def _flag(value: bool) -> str:
    return "true" if value else "false"
