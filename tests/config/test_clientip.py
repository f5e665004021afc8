"""config.clientip.client_ip: REMOTE_ADDR, unless the peer is a trusted proxy; then
X-Forwarded-For from its right end, past the trusted proxies."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from config.clientip import client_ip


def request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_an_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    assert client_ip(request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (["10.0.0.1"], "198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "198.51.100.1, 10.2.3.4", "198.51.100.1"),  # two proxies of ours
        (["10.0.0.0/8"], "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # what the client wrote is left of it
        (["10.0.0.0/8"], "not-an-ip, 198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "198.51.100.1, junk", "10.0.0.1"),  # a malformed hop: nothing left of it is trusted
        (["10.0.0.0/8"], "", "10.0.0.1"),
        # every hop ours: the leftmost one is as far as we can see
        (["10.0.0.0/8", "2001:db8::/32"], " 2001:db8:1::5 , 2001:db8::1", "2001:db8:1::5"),
    ],
)
def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies
    assert client_ip(request("10.0.0.1", forwarded)) == expected


def test_a_missing_or_odd_remote_addr_gives_nothing(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("")) == ""
    assert client_ip(request("unix:/run/daphne.sock")) == ""
