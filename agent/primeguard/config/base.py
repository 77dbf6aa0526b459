"""The config schema's building blocks, shared by every config module (agent config, alert routes):
strict models, identifiers, and where a secret comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret comes from: exactly one of env, file, value."""

    env: str | None = None
    file: str | None = None
    value: SecretStr | None = None

    @field_validator("file")
    @classmethod
    def _anchored(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A relative ``file`` names a path beside the config file that declares it, wherever the
        process runs: anchored at load (``context={"base_dir": ...}``); left as written otherwise."""
        base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
        if value is None or base is None or Path(value).is_absolute():
            return value
        return str(Path(base) / value)

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if sum(x is not None for x in (self.env, self.file, self.value)) != 1:
            raise ValueError("give exactly one of env, file, value")
        return self
