"""Credentials blanked out of text, in every form they come back in; ordinary words and paths left alone."""

import base64

import pytest

from reverie.secrets import redacted, redacted_all, url_secrets

pytestmark = pytest.mark.without_prefect

BASIC = base64.b64encode(b"ana:s3cret-pass").decode()


@pytest.mark.parametrize("text, expected", [
    ("POST http://ana:s3cret-pass@llm.local/v1/chat/completions", "POST http://***@llm.local/v1/chat/completions"),
    ("Incorrect API key provided: Basic " + BASIC + ".", "Incorrect API key provided: Basic ***."),
    ("authorization: Bearer sk-live-0123456789abcdef", "authorization: Bearer ***"),
    ("GET https://h/v1/models?api-key=abc123def&x=1", "GET https://h/v1/models?api-key=***&x=1"),
    ("https://h/hook?token=t0k3n-value", "https://h/hook?token=***"),
    ("https://h/x?a=1&access_token=zzz999", "https://h/x?a=1&access_token=***"),
    ("s3://b/d?X-Amz-Credential=AKIA1234&X-Amz-Signature=abcdef12&sig=abc",
     "s3://b/d?X-Amz-Credential=***&X-Amz-Signature=***&sig=***"),
])
@pytest.mark.reliability("secret")
def test_a_credential_in_any_form_is_blanked_without_being_named(text, expected):
    assert redacted(text) == expected


@pytest.mark.parametrize("text", [
    "Basic checks ran on 3 batches",  # a word after Basic that is not base64 of user:password
    "landing/events/code=US/part-0.parquet: no rows",  # a hive partition is not a query key
    "status_code=401 for the bearer of bad news",
])
def test_ordinary_text_is_left_as_it_is(text):
    assert redacted(text) == text


@pytest.mark.reliability("secret")
def test_the_credentials_of_a_url_are_blanked_wherever_they_show():
    url = "http://ana:s3cret-pass@llm.local/v1?api-key=qk-12345"
    secrets = url_secrets(url)
    assert set(secrets) == {"s3cret-pass", "ana:s3cret-pass", BASIC, "qk-12345"}
    said = {"error": "refused s3cret-pass (qk-12345), or ana:s3cret-pass", "list": ["sk", 3, None]}
    assert redacted_all(said, secrets) == {"error": "refused *** (***), or ***", "list": ["sk", 3, None]}
