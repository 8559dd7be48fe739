"""What a backend sends back through the data plane, with the secrets the runtime gave it masked.

A backend knows the credentials the runtime sends it (its bearer token, the headers and
environment of its spec), and a careless or hostile one echoes them: in a tool result, a
log message, a progress message, a request it relays, even a tool description.  The data
plane hands those to its callers and to ``serve``'s clients, who must never see the
runtime's credentials.  So every such value passes through :func:`scrub_model`, which
replaces each known secret value (``SecretRedactor.scrub_values``: nothing else is
touched, so a result is otherwise exactly what the backend sent).

The common case costs nothing: a backend without secrets is returned as is.  Otherwise the
model is dumped to JSON once and re-parsed only when a secret was actually found.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
import pydantic

from vmcp_actors.backend.catalogue import BackendCatalogue
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = ["scrub_catalogue", "scrub_model", "scrub_text"]

_M = TypeVar("_M", bound=pydantic.BaseModel)


def scrub_model(model: _M, redactor: SecretRedactor) -> _M:
    """``model`` with every known secret value replaced; the same object when none occurs."""
    if not redactor.has_secrets():
        return model
    text = model.model_dump_json(by_alias=True, exclude_unset=True)
    clean = redactor.scrub_values(text)
    if clean == text:
        return model
    return type(model).model_validate_json(clean)


def scrub_text(text: str | None, redactor: SecretRedactor) -> str | None:
    """A free text from the backend (a progress message), secrets replaced."""
    if text is None or not redactor.has_secrets():
        return text
    return redactor.scrub_values(text)


def scrub_catalogue(catalogue: BackendCatalogue, redactor: SecretRedactor) -> BackendCatalogue:
    """Every listed tool, resource, template and prompt with secrets replaced (descriptions included)."""
    if not redactor.has_secrets():
        return catalogue
    return attrs.evolve(
        catalogue,
        tools=tuple(scrub_model(item, redactor) for item in catalogue.tools),
        resources=tuple(scrub_model(item, redactor) for item in catalogue.resources),
        resource_templates=tuple(scrub_model(item, redactor) for item in catalogue.resource_templates),
        prompts=tuple(scrub_model(item, redactor) for item in catalogue.prompts),
    )
