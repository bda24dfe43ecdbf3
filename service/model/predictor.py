"""The served model: load and check it once, describe it, and predict with it.

This is the only module the HTTP layer asks for predictions; it alone touches
the pipeline, which keeps scikit-learn and pandas out of ``service.http.routes``.
Its answers are response models (pydantic): the routes return them as they are and the
OpenAPI document reads their schema, so each shape is declared here once.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import pandas as pd
import sklearn
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sklearn.base import is_classifier
from typing_extensions import TypedDict

from service.errors import ContractViolation, OutputNotSupported, PredictionFailed
from service.model import artifact, contract, payload, schema, signing

Output = Literal["predict", "proba", "both"]
OUTPUTS: tuple[Output, ...] = get_args(Output)
Sha256 = Annotated[str, Field(pattern=signing.HEX_SHA256.pattern)]
"""A version's identity: its artifact's sha256, lowercase hex."""
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Label = str | int | float | bool
"""A class label, or a regressor's number."""
Probability = Annotated[float, Field(ge=0, le=1)]


# ---- response models: what GET /model and POST /model/predict answer -------------------------


class Feature(BaseModel):
    """One input column, as a request must carry it."""

    name: str
    type: str = Field(json_schema_extra={"enum": list(schema.KINDS)})
    required: bool
    nullable: bool
    categories: list[Any] | None


Step = TypedDict("Step", {"name": str, "class": str})
"""One pipeline step (a TypedDict: ``class`` is a keyword, not an attribute name)."""


class Toolchain(BaseModel):
    """scikit-learn's and Python's versions; null when unknown."""

    sklearn: str | None
    python: str | None


class Versions(BaseModel):
    """What the artifact was packed with, and what runs it."""

    packed: Toolchain
    running: Toolchain


class ModelSummary(BaseModel):
    """What the version store keeps of a model: enough to list and compare versions."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    features: list[Feature]
    model_type: str
    task: Literal["classifier", "regressor"]
    size_bytes: int = Field(ge=0)
    versions: Versions
    packed_at: str | None


class ModelMetadata(ModelSummary):
    """The served model: features, steps, task, classes, identity and versions."""

    steps: list[Step]
    classes: list[Label] | None
    outputs: list[Output]
    sha256: Sha256
    loaded_at: Timestamp
    schema_source: str


class ServedVersion(BaseModel):
    """The version that computed the answer."""

    model_config = ConfigDict(extra="forbid")

    sha256: Sha256


class Prediction(BaseModel):
    """Predictions, and probabilities if asked, with the version and row count.

    Built without validation by :meth:`Model.render`: the lists are numpy's own ``tolist()``
    and can hold thousands of rows. A field left unset is left out of the response.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    predictions: list[Label] = Field(min_length=1)
    probabilities: list[list[Probability]] | SkipJsonSchema[None] = None
    """One row per input row, one probability per class, in `classes` order."""
    classes: list[Label] | SkipJsonSchema[None] = None
    model: ServedVersion
    rows: int = Field(ge=1)


@dataclass
class Model:
    """A loaded, checked pipeline with its schema and identity.

    Not thread-safe: sklearn-pandas' mapper writes ``transformed_names_`` on every
    transform, so callers run one scoring call at a time per process
    (``service.serving.batching`` holds that lock).
    """

    pipeline: Any
    schema: schema.Schema
    path: Path
    sha256: str
    size: int
    packed_sklearn: str | None
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def estimator(self) -> Any:
        return self.pipeline.steps[-1][1]

    @property
    def has_proba(self) -> bool:
        return hasattr(self.estimator, "predict_proba")

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else np.asarray(classes).tolist()

    def check_output(self, output: str) -> None:
        """Refuse probabilities from an estimator that cannot give them."""
        if output != "predict" and not self.has_proba:
            raise OutputNotSupported(
                f"output {output!r} needs predict_proba, which "
                f"{type(self.estimator).__name__} does not have",
                details={"output": output, "supported": ["predict"]},
            )

    def score(
        self, frame: pd.DataFrame, *, proba: bool, finite: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels, and probabilities if asked, for validated rows, transforming them once.

        Same steps as ``Pipeline.predict`` / ``predict_proba``: every step but the last
        transforms, the last predicts. ``finite`` (the rows were checked to hold no NaN or
        infinity) lets scikit-learn skip re-checking every value.
        """
        try:
            # Finite inputs can still overflow inside a pipeline (1e308 through a scaler):
            # numpy's warnings are silenced here and the outputs checked below instead.
            with sklearn.config_context(assume_finite=finite), np.errstate(all="ignore"):
                data = frame
                for _, step in self.pipeline.steps[:-1]:
                    if step is not None and step != "passthrough":
                        data = step.transform(data)
                labels = self.estimator.predict(data)
                probabilities = self.estimator.predict_proba(data) if proba else None
        except (ValueError, TypeError, KeyError) as exc:
            raise PredictionFailed(f"the model could not score these rows: {exc}") from exc
        _require_finite(labels, "predictions")
        if probabilities is not None:
            _require_finite(probabilities, "probabilities")
        return labels, probabilities

    def predict(self, frame: pd.DataFrame, output: str = "predict") -> Prediction:
        """One request's prediction, JSON-native (warm-up and unbatched callers)."""
        self.check_output(output)
        labels, proba = self.score(frame, proba=output != "predict")
        return self.render(labels, proba)

    @cached_property
    def served(self) -> ServedVersion:
        """This version, as every answer names it."""
        return ServedVersion.model_construct(sha256=self.sha256)

    def render(self, labels: np.ndarray, proba: np.ndarray | None) -> Prediction:
        """Arrays to the response's JSON-native lists (no numpy scalars reach the JSON),
        unvalidated: every request pays for this, and a list can hold 10,000 rows."""
        predictions = np.asarray(labels).tolist()
        asked: dict[str, Any] = {}
        if proba is not None:
            probabilities = np.asarray(proba, dtype=float).tolist()
            asked = {"probabilities": probabilities, "classes": self.classes}
        return Prediction.model_construct(
            predictions=predictions, **asked, model=self.served, rows=len(predictions)
        )

    def warm_up(self) -> str | None:
        """Predict the schema's example row once; the reason it failed, or None.

        Proves the model serves before traffic comes (readiness) and before a candidate
        version is activated.
        """
        columns = {name: [value] for name, value in self.schema.example.items()}
        try:
            frame = payload.to_frame(self.schema, columns, unknown="ignore")
            self.predict(frame, "both" if self.has_proba else "predict")
        except Exception as exc:  # any failure means "not ready", never a crash
            return f"warm-up prediction on the example row failed: {exc}"
        return None

    def metadata(self) -> ModelMetadata:
        """What ``GET /model`` shows: features, steps, task, identity and versions."""
        return ModelMetadata(
            features=[
                Feature(
                    name=c.name,
                    type=c.kind,
                    required=not c.nullable,
                    nullable=c.nullable,
                    categories=None if c.categories is None else list(c.categories),
                )
                for c in self.schema.columns
            ],
            steps=[{"name": n, "class": type(s).__name__} for n, s in self.pipeline.steps],
            model_type=type(self.estimator).__name__,
            task="classifier" if is_classifier(self.estimator) else "regressor",
            classes=self.classes,
            outputs=list(OUTPUTS) if self.has_proba else ["predict"],
            sha256=self.sha256,
            size_bytes=self.size,
            loaded_at=self.loaded_at,
            schema_source=self.schema.source,
            versions=Versions(
                packed=Toolchain(
                    sklearn=self.schema.packed.get("sklearn") or self.packed_sklearn,
                    python=self.schema.packed.get("python"),
                ),
                running=Toolchain(sklearn=sklearn.__version__, python=platform.python_version()),
            ),
            packed_at=self.schema.packed.get("packed_at"),
        )

    def record(self) -> dict[str, Any]:
        """What the version store keeps about this model: enough to list and compare."""
        return version_record(self.metadata().model_dump())


def _require_finite(values: np.ndarray, what: str) -> None:
    """JSON has no NaN or infinity: a non-finite output is the rows' fault, said as such."""
    array = np.asarray(values)
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        rows = sorted({int(i) for i in np.argwhere(~np.isfinite(array))[:, 0][:20]})
        raise PredictionFailed(
            f"the model's {what} are not finite for rows {rows} (inputs out of its range?)",
            details={"rows": rows},
        )


def version_record(metadata: dict[str, Any]) -> dict[str, Any]:
    """A store record from the JSON of ``metadata()`` (also a candidate check's output)."""
    return ModelSummary.model_validate(metadata).model_dump()


def _schema_for(pipeline: Any, schema_path: Path) -> schema.Schema:
    """The schema file when present (checked against the pipeline), else the inferred one."""
    inferred = schema.infer(pipeline)
    if not schema_path.exists():
        return inferred
    packed = schema.load(schema_path)
    missing = sorted(set(inferred.names) - set(packed.names))
    if missing:
        raise ContractViolation(
            f"schema file {schema_path} lacks columns the pipeline reads: {missing}",
            details={"missing_columns": missing},
        )
    return packed


def load(path: Path, *, key: bytes | None = None) -> Model:
    """Read, verify, unpickle and check the artifact; raises an error that says what is wrong."""
    loaded = artifact.load(path, key)
    pipeline = contract.check(loaded.obj)
    return Model(
        pipeline=pipeline,
        schema=_schema_for(pipeline, path.with_suffix(".schema.json")),
        path=path,
        sha256=loaded.sha256,
        size=loaded.size,
        packed_sklearn=loaded.packed_sklearn,
    )
