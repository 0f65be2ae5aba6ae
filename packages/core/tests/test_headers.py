"""Normalising the three header shapes of a raw record into one dict of lower-case names."""

from __future__ import annotations

from moesif_core.headers import normalize_headers


def test_asgi_pairs_become_lower_case_text_with_repeats_joined() -> None:
    raw = [
        (b"Accept", b"text/html"),
        (b"x-trace", b"1"),
        (b"accept", b"application/json"),
        (b"X-Latin", "caf\xe9".encode("latin-1")),
    ]
    assert normalize_headers(raw, "asgi") == {"accept": "text/html, application/json", "x-trace": "1", "x-latin": "caf\xe9"}


def test_wsgi_environ_names_become_header_names() -> None:
    raw = [
        ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
        ("CONTENT_TYPE", "application/json"),
        ("CONTENT_LENGTH", "12"),
        ("HTTP_HOST", "h"),
    ]
    assert normalize_headers(raw, "wsgi") == {
        "x-forwarded-for": "1.2.3.4",
        "content-type": "application/json",
        "content-length": "12",
        "host": "h",
    }


def test_plain_pairs_are_lowered_and_repeats_joined() -> None:
    raw = [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")]
    assert normalize_headers(raw, "pairs") == {"set-cookie": "a=1, b=2", "content-type": "text/plain"}


def test_three_repeats_are_joined_in_order() -> None:
    raw = [(b"x", b"1"), (b"x", b"2"), (b"x", b"3")]
    assert normalize_headers(raw, "asgi") == {"x": "1, 2, 3"}


def test_mismatched_style_and_malformed_entries_are_tolerated() -> None:
    # bytes where str was promised, a non-pair, a None value, an int value, a non-str name
    raw = [(b"X-A", b"1"), "oops", ("x-b", None), ("X-C", 3), (5, "x"), ("x-d", "4")]
    assert normalize_headers(raw, "pairs") == {"x-a": "1", "x-c": "3", "x-d": "4"}


def test_a_mapping_is_accepted_too() -> None:
    assert normalize_headers({"X-A": "1"}, "pairs") == {"x-a": "1"}


def test_empty_and_unusable_inputs_give_an_empty_dict() -> None:
    assert normalize_headers((), "asgi") == {}
    assert normalize_headers(None, "wsgi") == {}
    assert normalize_headers(42, "pairs") == {}


def test_each_call_returns_a_new_dict() -> None:
    raw = [(b"a", b"1")]
    first = normalize_headers(raw, "asgi")
    first["a"] = "changed"
    assert normalize_headers(raw, "asgi") == {"a": "1"}


def test_a_mapping_with_two_letter_names_is_not_misread_as_pairs() -> None:
    assert normalize_headers({"ab": "1"}, "pairs") == {"ab": "1"}
    assert normalize_headers({b"te": b"x"}, "asgi") == {"te": "x"}


def test_bytes_names_in_pairs_style_become_text() -> None:
    assert normalize_headers([(b"X-A", "1")], "pairs") == {"x-a": "1"}


def test_a_whole_environ_gives_its_headers_and_nothing_else() -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/x",
        "HTTP_HOST": "example.com",
        "HTTP_X_REQUEST_ID": "abc",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": object(),
        "REMOTE_ADDR": "127.0.0.1",
    }
    expected = {"host": "example.com", "x-request-id": "abc", "content-type": "application/json", "content-length": "2"}
    assert normalize_headers(environ, "environ") == expected
    # A value that is not text (a broken middleware) costs that entry only.
    assert normalize_headers({**environ, "HTTP_X_ODD": 7, 3: "x"}, "environ") == {**expected, "x-odd": "7"}


def test_environ_names_cache_stays_bounded_under_made_up_header_names() -> None:
    from moesif_core import headers as headers_module

    for i in range(headers_module._NAME_CACHE_LIMIT + 10):
        assert normalize_headers({f"HTTP_X_MADE_UP_{i}": "v", "wsgi.input": None}, "environ") == {f"x-made-up-{i}": "v"}
    assert len(headers_module._environ_names) <= headers_module._NAME_CACHE_LIMIT
