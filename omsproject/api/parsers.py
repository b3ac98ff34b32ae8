"""The API's one parser: JSON read within the bounds of omsproject.json_body."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from omsproject.json_body import JsonBodyError, json_body_load


class BodyRuleBroken(ParseError):
    """A body that is JSON but breaks one of our rules: a 400 naming ``body`` and the rule."""

    def __init__(self, error: JsonBodyError):
        super().__init__(str(error))
        self.fields = {"body": error.rule}


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, but a body nested too deep (or holding NaN or Infinity) is a 400,
    never a RecursionError."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            return json_body_load(stream.read().decode(encoding))
        except JsonBodyError as error:
            raise BodyRuleBroken(error) from None
        except ValueError as error:  # not JSON, or not in the declared charset
            raise ParseError(f"JSON parse error - {error}") from None
