"""The served model: load and check it once, describe it, and predict with it.

This is the only module the HTTP layer asks for predictions; it alone touches
the pipeline, which keeps scikit-learn and pandas out of ``service.http.routes``.
Its answers are response models (pydantic): the routes return them as they are and the
OpenAPI document reads their schema, so each shape is declared here once.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import sklearn
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sklearn.base import is_classifier
from typing_extensions import TypedDict

from service.errors import ContractViolation, OutputNotSupported, PredictionFailed
from service.model import artifact, contract, payload, schema, serving_path, signing
from service.model.payload import Columns
from service.model.plan import Fallback, Plan, Verdict
from service.model.serving_path import ServingPath

Output = Literal["predict", "proba", "both"]
OUTPUTS: tuple[Output, ...] = get_args(Output)
Sha256 = Annotated[str, Field(pattern=signing.HEX_SHA256.pattern)]
"""A version's identity: its artifact's sha256, lowercase hex."""
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Label = str | int | float | bool
"""A class label, or a regressor's number."""
Probability = Annotated[float, Field(ge=0, le=1)]
Outputs = tuple[np.ndarray, np.ndarray | None]
Guard = Callable[[Callable[[], Outputs]], Outputs]
"""How a pipeline call is run: at once, or on the batcher's model thread, with a deadline."""


def at_once(call: Callable[[], Outputs]) -> Outputs:
    return call()


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


class Environment(Toolchain):
    """What runs the model: the versions a pickle depends on, and the lock they came from
    (null in the records of versions stored before they were kept)."""

    pandas: str | None = None
    numpy: str | None = None
    sklearn_pandas: str | None = None
    lock_sha256: str | None = None
    """The sha256 of requirements/runtime.txt, which installed them (LOCK_SHA256)."""


@cache
def running_versions() -> dict[str, str]:
    """The versions a pickle depends on, as installed: read once, since they cannot change
    under a running process (each lookup reads a package's metadata from disk)."""
    return {
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "pandas": importlib.metadata.version("pandas"),
        "numpy": importlib.metadata.version("numpy"),
        "sklearn_pandas": importlib.metadata.version("sklearn-pandas"),
    }


class Versions(BaseModel):
    """What the artifact was packed with, and what runs it."""

    packed: Toolchain
    running: Environment


class ModelSummary(BaseModel):
    """What the version store keeps of a model: enough to list and compare versions."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    features: list[Feature]
    model_type: str
    task: Literal["classifier", "regressor"]
    size_bytes: int = Field(ge=0)
    versions: Versions
    packed_at: str | None
    serving_path: ServingPath | SkipJsonSchema[None] = None
    """How the version serves, as its load (or the candidate check of an upload) compiled
    and verified it; absent from versions stored before plans."""


class ModelMetadata(ModelSummary):
    """The served model: features, steps, task, classes, identity, versions and serving path."""

    steps: list[Step]
    classes: list[Label] | None
    outputs: list[Output]
    sha256: Sha256
    loaded_at: Timestamp
    schema_source: str
    serving_path: ServingPath


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
    """A loaded, checked pipeline with its schema and identity, and the plan that serves it.

    The pipeline path is not thread-safe: sklearn-pandas' mapper writes
    ``transformed_names_`` on every transform, so callers run one scoring call at a time
    per process (``service.serving.batching`` holds that lock). A plan keeps no state per
    call and would not need the lock.
    """

    pipeline: Any
    schema: schema.Schema
    path: Path
    sha256: str
    size: int
    packed_sklearn: str | None
    plan: Plan | Fallback | None = None
    """What :meth:`load` prepared: a verified plan (it serves), the Fallback saying why the
    pipeline serves instead, or None when the fast path is off."""
    verdict: Verdict | None = None
    """The plan's verification, when one ran (or was remembered: see :func:`load`)."""
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

    @property
    def serves_by_plan(self) -> bool:
        return isinstance(self.plan, Plan)

    @cached_property
    def serving_path(self) -> ServingPath:
        """Which path computes the predictions, and why (``GET /model``, ``model_info``)."""
        return serving_path.describe(self.plan, self.verdict)

    @property
    def runs_inline(self) -> bool:
        """Whether a call may run on the caller's thread: a plan running only library code
        (see ``Plan.bounded``); the pipeline path is then reached only through ``guard``."""
        return isinstance(self.plan, Plan) and self.plan.bounded

    def score(
        self, columns: Columns, *, proba: bool, finite: bool = False, guard: Guard = at_once
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels, and probabilities if asked, for validated columns (``payload.validate``).

        A verified plan computes them from the columns directly, with no DataFrame. Else the
        pipeline's steps, as ``Pipeline.predict`` / ``predict_proba`` run them but
        transforming once: every step but the last transforms, the last predicts.
        ``finite`` (the rows were checked to hold no NaN or infinity) lets scikit-learn
        skip re-checking every value; the plan does not re-check them at all. ``guard``
        runs the pipeline's call when the plan refused rows: the batcher passes its
        deadline when it ran an inline plan on the request thread.
        """
        try:
            # Finite inputs can still overflow inside a pipeline (1e308 through a scaler):
            # numpy's warnings are silenced on both paths and the outputs checked below.
            if isinstance(self.plan, Plan):
                labels, probabilities = self._plan_score(self.plan, columns, proba, finite, guard)
            else:
                labels, probabilities = self._pipeline_score(columns, proba, finite)
        except (ValueError, TypeError, KeyError) as exc:
            raise PredictionFailed(f"the model could not score these rows: {exc}") from exc
        _require_finite(labels, "predictions")
        if probabilities is not None:
            _require_finite(probabilities, "probabilities")
        return labels, probabilities

    def _plan_score(
        self, plan: Plan, columns: Columns, proba: bool, finite: bool, guard: Guard
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The plan's answer; for rows it refuses, the pipeline's.

        The plan refuses exactly what ``pipeline.predict`` refuses (verified at load). But
        the pipeline path runs with ``assume_finite`` when the inputs were checked finite,
        so a value that overflows on the way (1e308 through a scaler) reaches the estimator
        unchecked and gets an answer there. The pipeline decides such rows, as it did
        before plans, with its own answer or error message; they are rare, so running
        twice costs nothing that matters.
        """
        try:
            return plan.score(columns, proba=proba)
        except (ValueError, TypeError, KeyError):
            return guard(lambda: self._pipeline_score(columns, proba, finite))

    def _pipeline_score(
        self, columns: Columns, proba: bool, finite: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        with sklearn.config_context(assume_finite=finite), np.errstate(all="ignore"):
            data = payload.build_frame(columns)
            for _, step in self.pipeline.steps[:-1]:
                if step is not None and step != "passthrough":
                    data = step.transform(data)
            labels = self.estimator.predict(data)
            return labels, self.estimator.predict_proba(data) if proba else None

    def predict(self, columns: Columns, output: str = "predict") -> Prediction:
        """One request's prediction, JSON-native (warm-up and unbatched callers)."""
        self.check_output(output)
        labels, proba = self.score(columns, proba=output != "predict")
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
            validated = payload.validate(self.schema, columns, unknown="ignore")
            self.predict(validated, "both" if self.has_proba else "predict")
        except Exception as exc:  # any failure means "not ready", never a crash
            return f"warm-up prediction on the example row failed: {exc}"
        return None

    @property
    def trained_sklearn(self) -> str:
        """The scikit-learn that pickled the model: the packed record's, else what unpickling
        warned of, else this one (a Pipeline is an estimator: scikit-learn warns whenever
        its recorded version differs)."""
        return self.schema.packed.get("sklearn") or self.packed_sklearn or sklearn.__version__

    def metadata(self, lock_sha256: str | None = None) -> ModelMetadata:
        """What ``GET /model`` shows: features, steps, task, identity and versions (with the
        lock that installed them, when known)."""
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
                    sklearn=self.trained_sklearn,
                    python=self.schema.packed.get("python"),
                ),
                running=Environment(**running_versions(), lock_sha256=lock_sha256),
            ),
            packed_at=self.schema.packed.get("packed_at"),
            serving_path=self.serving_path,
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


def load(path: Path, *, key: bytes | None = None, fast_path: bool = False) -> Model:
    """Read, verify, unpickle and check the artifact; raises an error that says what is wrong.

    With ``fast_path`` (servers pass ``Settings.fast_path``), the pipeline is compiled to a
    plan and verified beside it; the plan serves only if it matched everywhere.
    """
    loaded = artifact.load(path, key)
    pipeline = contract.check(loaded.obj)
    model_schema = _schema_for(pipeline, path.with_suffix(".schema.json"))
    compiled, verdict = (
        serving_path.prepare(pipeline, model_schema, loaded.sha256) if fast_path else (None, None)
    )
    return Model(
        pipeline=pipeline,
        schema=model_schema,
        path=path,
        sha256=loaded.sha256,
        size=loaded.size,
        packed_sklearn=loaded.packed_sklearn,
        plan=compiled,
        verdict=verdict,
    )
