"""toolkit.redact: pseudonyms long enough not to collide, and the secret-salt switch."""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd
import pytest

from toolkit import redact
from toolkit.errors import ConfigurationError

SECRET = "team-secret-0f3a9c2e7b1d4a65"


@pytest.fixture(autouse=True)
def _no_salt(monkeypatch):
    monkeypatch.delenv(redact.SALT_ENV, raising=False)


def test_300k_distinct_names_give_300k_distinct_pseudonyms():
    names = [f"Person {i:06d} Example" for i in range(300_000)]
    frame = pd.DataFrame({"contact_id": range(len(names)), "name": names})
    out = redact.redact_frame(frame)["name"]
    assert out.str.fullmatch(r"Person-[0-9a-f]{12}").all()
    assert out.nunique() == len(names)


def test_pseudonyms_are_12_hex_characters_and_stable():
    assert re.fullmatch(r"Person-[0-9a-f]{12}", redact.pseudonym("Ada Lovelace"))
    email = redact.pseudonym("Ada@Example.com ", "email")
    assert re.fullmatch(r"person-[0-9a-f]{12}@redacted\.invalid", email)
    assert email == redact.pseudonym("ada@example.com", "email")
    # derived from the documented scheme, not read off the code: SHA-256 over the public
    # project salt, the kind and the text, NUL-separated; the first 12 hex digits
    expected = hashlib.sha256(b"lever-tag-toolkit/redact/v1\x00name\x00Ada Lovelace").hexdigest()
    assert redact.pseudonym("Ada Lovelace") == f"Person-{expected[:12]}"  # same on every machine
    assert redact.pseudonym(None) is None and pd.isna(redact.pseudonym(pd.NA))


def test_secret_salt_switch(monkeypatch):
    public = redact.pseudonym("Ada Lovelace")
    assert redact.salt_kind().startswith("project salt")
    monkeypatch.setenv(redact.SALT_ENV, SECRET)
    secret = redact.pseudonym("Ada Lovelace")
    assert secret != public and re.fullmatch(r"Person-[0-9a-f]{12}", secret)
    assert redact.pseudonym("Ada Lovelace") == secret  # stable for whoever shares the salt
    keyed = hmac.new(SECRET.encode(), b"name\x00Ada Lovelace", hashlib.sha256).hexdigest()
    assert secret == f"Person-{keyed[:12]}"  # an HMAC under the secret, as documented
    frame = pd.DataFrame({"name": ["Ada Lovelace"], "email": ["ada@example.com"]})
    assert redact.redact_frame(frame)["name"].item() == secret
    assert redact.salt_kind() == f"secret salt ({redact.SALT_ENV})"
    assert SECRET not in redact.salt_kind()
    # hashing guessed names with the public project salt no longer finds the person
    assert redact.pseudonym("Ada Lovelace", salt=None) == public != secret
    monkeypatch.setenv(redact.SALT_ENV, SECRET + "-other")
    assert redact.pseudonym("Ada Lovelace") not in (public, secret)
    monkeypatch.delenv(redact.SALT_ENV)
    assert redact.pseudonym("Ada Lovelace") == public


def test_short_salt_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv(redact.SALT_ENV, "tiny-salt")
    with pytest.raises(ConfigurationError) as err:
        redact.pseudonym("Ada Lovelace")
    assert "at least 16 characters" in str(err.value)
    assert "tiny-salt" not in str(err.value)
