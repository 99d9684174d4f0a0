"""The shared edge of every inbound webhook: POST only, and never more than the limit read."""
import io

from django.http import JsonResponse
from django.test import RequestFactory

from syncsite.inbound import read_post_body


def test_another_method_is_405_with_allow():
    answer = read_post_body(RequestFactory().get("/x/"))
    assert isinstance(answer, JsonResponse) and answer.status_code == 405 and answer["Allow"] == "POST"


def test_a_body_over_the_limit_is_413_whether_declared_or_not():
    declared = RequestFactory().post("/x/", data=b"x" * 11, content_type="application/json")
    assert read_post_body(declared, limit=10).status_code == 413
    lying = RequestFactory().post("/x/", data=b"", content_type="application/json")
    lying.META["CONTENT_LENGTH"] = "5"
    lying._stream = io.BytesIO(b"y" * 50)   # a client that sends more than it declared
    assert read_post_body(lying, limit=10).status_code == 413


def test_a_body_within_the_limit_is_returned_whole():
    request = RequestFactory().post("/x/", data=b'{"a":1}', content_type="application/json")
    assert read_post_body(request, limit=10) == b'{"a":1}'
