"""Property (fuzz) tests of what the central reads from outside: settings (variables
and YAML files) and the HTTP request parsing. Whatever arrives, the answer is a
value in range or the one clear refusal (ConfigError / 400), never another error.

The quick slice runs in every ``make test``; ``make fuzz`` is the long mode
(evstack.fuzzing).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

from aiohttp import web
from evcentral.http.api import _price_from, _token_from
from evcentral.http.queries import cp_query, session_query
from evcentral.settings import CentralSettings
from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError
from evstack.fuzzing import fuzz_target
from hypothesis import strategies as st
from multidict import MultiDict

_FIELDS = [f.name for f in dataclasses.fields(CentralSettings)]
_PARSER = build_parser(CentralSettings, "evcentral", "fuzz")
_NO_FLAGS = _PARSER.parse_args([])
# One settings file, rewritten for each input, in memory where there is a tmpfs:
# a new file on disk for each input was most of this target's time.
_YAML_DIR = tempfile.TemporaryDirectory(
    prefix="evfuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
_YAML_FILE = Path(_YAML_DIR.name) / "settings.yaml"

# text rich in what breaks parsers: huge numbers, signs, units, NUL, surrogates
_nasty_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.integers().map(str),
    st.integers(min_value=10**300, max_value=10**420).map(str),
    st.floats().map(repr),
    st.sampled_from(["", " ", "-1", "0", "1e309", "nan", "inf", "0x10", "1_000", "true", "٣"]),
)
_yaml_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**420),
    st.floats(),
    _nasty_text,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@fuzz_target(300, batch=10, env=st.dictionaries(st.sampled_from(_FIELDS), _nasty_text, max_size=4))
def test_any_environment_is_settings_or_a_config_error(env: dict[str, str]) -> None:
    variables = {f"EV_{name.upper()}": value for name, value in env.items()}
    try:
        load_settings(CentralSettings, _NO_FLAGS, variables)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message  # one line, for exit 2
    except ValueError as exc:  # embedded NUL in a path: refused by the OS layer
        assert "null" in str(exc).lower()


@fuzz_target(
    200,
    batch=10,
    document=st.one_of(
        st.dictionaries(st.sampled_from(_FIELDS), _yaml_scalar, max_size=4).map(
            lambda d: "\n".join(f"{k}: {v!r}" for k, v in d.items())
        ),
        st.text(max_size=200),
    ),
)
def test_any_yaml_file_is_settings_or_a_config_error(document: str) -> None:
    _YAML_FILE.write_text(document, encoding="utf-8")
    try:
        load_settings(CentralSettings, _NO_FLAGS, {"EV_CONFIG": str(_YAML_FILE)})
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message
    except ValueError as exc:
        assert "null" in str(exc).lower()


def _refused_with_400(exc: web.HTTPException) -> None:
    assert exc.status == 400 and exc.text and '"error"' in exc.text


@fuzz_target(
    500,
    batch=20,
    body=st.one_of(st.binary(max_size=200), _yaml_scalar.map(lambda v: repr(v).encode())),
)
def test_any_price_body_is_a_price_in_range_or_400(body: bytes) -> None:
    try:
        price = _price_from(body)
    except web.HTTPException as exc:
        _refused_with_400(exc)
        return
    assert math.isfinite(price) and 0 <= price <= 100


@fuzz_target(300, batch=30, body=st.binary(max_size=200))
def test_any_id_token_body_is_a_token_or_400(body: bytes) -> None:
    try:
        token = _token_from(body)
    except web.HTTPException as exc:
        _refused_with_400(exc)
        return
    assert token.isprintable() and 1 <= len(token) <= 36


_query = st.dictionaries(
    st.sampled_from(["cp_id", "driver_id", "outcome", "since", "until", "limit", "offset"]),
    _nasty_text,
    max_size=5,
)


@fuzz_target(500, batch=10, query=_query, states=_nasty_text, search=_nasty_text)
def test_any_query_string_is_a_filter_or_400(
    query: dict[str, str], states: str, search: str
) -> None:
    for parse, args in (
        (session_query, MultiDict(query)),
        (cp_query, MultiDict({"state": states, "search": search})),
    ):
        try:
            parse(args)
        except web.HTTPException as exc:
            _refused_with_400(exc)
