"""Loading an artifact: every way it can be broken is refused with what is wrong."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from service.errors import (
    ArtifactNotFound,
    ArtifactUnreadable,
    ContractViolation,
    OutputNotSupported,
)
from service.model import predictor, schema


class Exploding:
    """Unpickling this raises, as a pickle of a class whose __setstate__ fails would."""

    def __reduce__(self):
        return (int, ("not a number",))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="model artifact not found"):
        predictor.load(tmp_path / "absent.pkl")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="is a directory"):
        predictor.load(tmp_path)


def test_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_text("hello, I am a CSV\n1,2,3\n")
    with pytest.raises(ArtifactUnreadable, match="is not a valid pickle"):
        predictor.load(path)


def test_truncated_pickle(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(model_path.read_bytes()[:100])
    with pytest.raises(ArtifactUnreadable, match="not a valid pickle"):
        predictor.load(path)


def test_missing_module_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(b"\x80\x04cno_such_module_xyz\nThing\n.")
    with pytest.raises(ArtifactUnreadable) as caught:
        predictor.load(path)
    assert "'no_such_module_xyz'" in caught.value.message
    assert caught.value.details == {"missing_module": "no_such_module_xyz"}


def test_unpickling_that_raises(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(pickle.dumps(Exploding()))
    with pytest.raises(ArtifactUnreadable, match="invalid literal for int"):
        predictor.load(path)


def test_wrong_object_breaks_contract(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(cloudpickle.dumps([1, 2, 3]))
    with pytest.raises(ContractViolation, match=r"builtins\.list, not a scikit-learn Pipeline"):
        predictor.load(path)


def test_schema_file_is_the_authority(model_path: Path) -> None:
    loaded = predictor.load(model_path)
    assert loaded.schema.source == "schema file"
    kinds = {c.name: c.kind for c in loaded.schema.columns}
    assert kinds == {
        "age": "integer",
        "income": "number",
        "debt_ratio": "number",
        "region": "string",
        "employment": "string",
    }
    region = next(c for c in loaded.schema.columns if c.name == "region")
    assert region.categories == ("east", "north", "south", "west")
    assert region.unknown_categories is True
    assert loaded.schema.packed["python"].count(".") == 2


def test_schema_file_missing_a_column_is_refused(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(model_path.read_bytes())
    raw = json.loads(model_path.with_suffix(".schema.json").read_text())
    raw["columns"] = [c for c in raw["columns"] if c["name"] != "income"]
    path.with_suffix(".schema.json").write_text(json.dumps(raw))
    with pytest.raises(ContractViolation, match=r"lacks columns the pipeline reads: \['income'\]"):
        predictor.load(path)


def test_broken_schema_file_is_refused(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(model_path.read_bytes())
    path.with_suffix(".schema.json").write_text('{"columns": [{"name": "age", "kind": "date"}]}')
    with pytest.raises(ArtifactUnreadable, match=r"schema file .* is invalid"):
        predictor.load(path)


def test_schema_inferred_from_column_transformer(regressor_path: Path) -> None:
    loaded = predictor.load(regressor_path)
    assert loaded.schema.source == "pipeline"
    assert loaded.schema.names == ("size", "rooms", "city")
    city = loaded.schema.columns[2]
    assert (city.kind, city.categories) == ("string", ("lyon", "nice", "paris"))
    assert loaded.schema.example == {"size": 0.0, "rooms": 0.0, "city": "lyon"}


def test_schema_inferred_from_mapper(demo_pipeline: Pipeline) -> None:
    inferred = schema.infer(demo_pipeline)
    assert inferred.names == ("age", "income", "debt_ratio", "region", "employment")
    employment = inferred.columns[4]
    assert employment.categories == ("salaried", "self-employed", "unemployed")
    assert employment.unknown_categories is False


def test_regressor_has_no_proba(regressor_path: Path) -> None:
    loaded = predictor.load(regressor_path)
    frame = pd.DataFrame({"size": [50.0], "rooms": [2.0], "city": ["nice"]})
    with pytest.raises(OutputNotSupported, match="Ridge does not have"):
        loaded.predict(frame, "proba")
    prediction = loaded.predict(frame)
    assert prediction.predictions == pytest.approx(loaded.pipeline.predict(frame).tolist())
    assert isinstance(prediction.predictions[0], float)


def test_metadata_describes_the_model(model_path: Path) -> None:
    meta = predictor.load(model_path).metadata()
    assert meta.model_type == "LogisticRegression"
    assert meta.task == "classifier"
    assert meta.classes == ["approved", "declined"]
    assert [s["class"] for s in meta.steps] == ["DataFrameMapper", "LogisticRegression"]
    assert meta.size_bytes == model_path.stat().st_size
    assert meta.versions.packed.sklearn == meta.versions.running.sklearn
    assert len(meta.sha256) == 64
    assert np.all([f.required for f in meta.features])


def test_overflowing_inputs_are_refused_not_rendered_as_null() -> None:
    """Finite inputs can overflow inside a pipeline; JSON has no NaN, so it is a 422."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from service.errors import PredictionFailed

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(0, 0.01, 200), "b": rng.normal(0, 0.01, 200)})
    pipeline = Pipeline(
        [
            ("columns", ColumnTransformer([("num", StandardScaler(), ["a", "b"])])),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, np.where(frame["a"] - frame["b"] > 0, "up", "down"))
    loaded = predictor.Model(
        pipeline, schema.infer(pipeline), path=Path("x"), sha256="0", size=0, packed_sklearn=None
    )
    rows = pd.DataFrame({"a": [0.001, 1e308], "b": [0.0, 1e308]})
    with pytest.raises(PredictionFailed, match="not finite for rows \\[1\\]"):
        loaded.score(rows, proba=True, finite=True)  # as served: inputs were checked finite
    ok = loaded.predict(pd.DataFrame({"a": [0.001], "b": [0.0]}), "both")
    assert np.isfinite(ok.probabilities).all()
