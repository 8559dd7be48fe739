"""``scrub_model``: known secret values never survive; everything else is left exactly as it was."""

from __future__ import annotations

import mcp_types as types
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.backend.scrub_models import scrub_model, scrub_text
from vmcp_actors.config.secret_values import SecretRedactor

SECRET = "tok-3141592653"
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


def _result(parts: list[str], structured: dict[str, str]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=part) for part in parts], structured_content=structured
    )


@given(st.lists(texts, max_size=4), st.dictionaries(texts, texts, max_size=3), st.data())
def test_a_secret_anywhere_in_a_result_is_masked_and_nothing_else_changes(
    parts: list[str], structured: dict[str, str], data: st.DataObject
) -> None:
    redactor = SecretRedactor([SECRET])
    clean = _result(parts, structured)
    if SECRET in clean.model_dump_json():
        return  # the generator produced the secret itself: not the case under test
    assert scrub_model(clean, redactor) is clean, "a result without the secret is returned untouched"
    where = data.draw(st.integers(min_value=0, max_value=len(parts)))
    leaky = _result([*parts[:where], f"key={SECRET}", *parts[where:]], {**structured, "k": SECRET})
    scrubbed = scrub_model(leaky, redactor)
    assert SECRET not in scrubbed.model_dump_json()
    assert scrubbed.content[where] == types.TextContent(type="text", text="key=<redacted>")
    assert [c for i, c in enumerate(scrubbed.content) if i != where] == clean.content


@given(texts)
def test_without_secrets_nothing_is_dumped_or_changed(text: str) -> None:
    redactor = SecretRedactor()
    model = types.TextContent(type="text", text=text)
    assert scrub_model(model, redactor) is model
    assert scrub_text(text, redactor) is text
