"""Loading an artifact: every way it can be broken is refused with what is wrong."""

from __future__ import annotations

import importlib
import json
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

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
    PredictionFailed,
)
from service.model import payload, predictor, schema, serving_path
from service.model.plan import Plan

# The module, not the function of the same name that service.model.plan re-exports.
plan_verify = importlib.import_module("service.model.plan.verify")


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
    columns = payload.validate(loaded.schema, frame.to_dict("list"), unknown="reject")
    with pytest.raises(OutputNotSupported, match="Ridge does not have"):
        loaded.predict(columns, "proba")
    prediction = loaded.predict(columns)
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
    rows = {"a": np.array([0.001, 1e308]), "b": np.array([0.0, 1e308])}
    with pytest.raises(PredictionFailed, match="not finite for rows \\[1\\]"):
        loaded.score(rows, proba=True, finite=True)  # as served: inputs were checked finite
    ok = loaded.predict({"a": np.array([0.001]), "b": np.array([0.0])}, "both")
    assert np.isfinite(ok.probabilities).all()


# ---- the serving path: a verified plan, a fallback, or the pipeline ---------------------------


def demo_columns(loaded: predictor.Model, frame: pd.DataFrame) -> payload.Columns:
    return payload.validate(loaded.schema, frame.to_dict("list"), unknown="ignore")


def test_the_demo_model_serves_by_its_plan(model_path: Path, demo_data) -> None:
    loaded = predictor.load(model_path, fast_path=True)
    assert loaded.serves_by_plan
    path = loaded.metadata().serving_path
    assert (path.path, path.step) == ("plan", None)
    assert path.reason is not None and path.reason.startswith("the plan matches the pipeline")
    assert path.detail is not None and path.detail["verified_rows"] >= 2000
    frame = demo_data[0].head(300)
    labels, proba = loaded.score(demo_columns(loaded, frame), proba=True)
    assert labels.tolist() == loaded.pipeline.predict(frame).tolist()
    np.testing.assert_allclose(proba, loaded.pipeline.predict_proba(frame), rtol=0, atol=1e-12)


def test_only_a_plan_of_library_code_runs_inline(model_path: Path, custom_path: Path) -> None:
    """The batcher skips the deadline's thread only where no operator's code can run."""
    assert predictor.load(model_path, fast_path=True).runs_inline
    assert not predictor.load(model_path).runs_inline
    assert not predictor.load(custom_path, fast_path=True).runs_inline


def test_without_the_fast_path_the_pipeline_serves(model_path: Path) -> None:
    loaded = predictor.load(model_path)
    assert (loaded.plan, loaded.serves_by_plan) == (None, False)
    path = loaded.metadata().serving_path
    assert (path.path, path.reason) == ("pipeline", "the fast path is off (FAST_PATH=false)")


def test_a_custom_transformer_falls_back_and_still_answers(custom_path: Path, demo_data) -> None:
    loaded = predictor.load(custom_path, fast_path=True)
    assert not loaded.serves_by_plan
    path = loaded.metadata().serving_path
    assert path.path == "fallback"
    assert path.step == "columns['shift'] (Shift)"
    assert path.reason == "no compiled form for tests.estimators.Shift"
    frame = demo_data[0].head(50)
    labels, proba = loaded.score(demo_columns(loaded, frame), proba=True)
    assert labels.tolist() == loaded.pipeline.predict(frame).tolist()
    np.testing.assert_allclose(proba, loaded.pipeline.predict_proba(frame), rtol=0, atol=1e-12)


def test_a_plan_that_disagrees_is_discarded_at_load(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliberately wrong plan (its probabilities off by 1e-9) fails verification."""
    right = Plan.score

    def wrong(self: Plan, columns: Any, *, proba: bool) -> Any:
        labels, probabilities = right(self, columns, proba=proba)
        return labels, None if probabilities is None else probabilities + 1e-9

    monkeypatch.setattr(Plan, "score", wrong)
    monkeypatch.setattr(serving_path, "VERDICTS", OrderedDict())  # no remembered verdict
    loaded = predictor.load(model_path, fast_path=True)
    assert not loaded.serves_by_plan
    path = loaded.metadata().serving_path
    assert (path.path, path.step) == ("fallback", "verification")
    assert path.reason is not None and "probabilities differ" in path.reason
    assert path.detail is not None and path.detail["max_error"] == pytest.approx(1e-9)
    assert set(path.detail["row"]) == set(loaded.schema.names)
    answer = loaded.predict(demo_example(loaded), "both")
    assert (
        answer.probabilities
        == loaded.pipeline.predict_proba(pd.DataFrame([loaded.schema.example])).tolist()
    )


def demo_example(loaded: predictor.Model) -> payload.Columns:
    raw = {name: [value] for name, value in loaded.schema.example.items()}
    return payload.validate(loaded.schema, raw, unknown="reject")


def test_a_verdict_is_remembered_per_artifact(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the same artifact again (a swap back, the tests) does not verify again."""
    calls: list[str] = []
    real = plan_verify.verify

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("verify")
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_verify, "verify", counted)
    monkeypatch.setattr(serving_path, "VERDICTS", OrderedDict())
    first = predictor.load(model_path, fast_path=True)
    again = predictor.load(model_path, fast_path=True)
    assert calls == ["verify"]
    assert again.serves_by_plan and again.verdict == first.verdict
    assert again.plan is not first.plan, "compiled again, for the pipeline just unpickled"


def test_rows_the_plan_refuses_get_the_pipeline_answer(model_path: Path) -> None:
    """1.7e308 is finite, so the pipeline path skips scikit-learn's finiteness checks and
    the scaler's overflow reaches the estimator, which answers; the plan refuses such rows
    as ``pipeline.predict`` would. The service's answer must not depend on the path."""
    by_plan = predictor.load(model_path, fast_path=True)
    by_pipeline = predictor.load(model_path)
    assert isinstance(by_plan.plan, Plan)
    raw = {name: [value] for name, value in by_plan.schema.example.items()}
    raw.update(income=[1.7e308], debt_ratio=[-1.7e308])
    columns = payload.validate(by_plan.schema, raw, unknown="reject")
    with pytest.raises(ValueError, match="infinity"):
        by_plan.plan.score(columns, proba=True)
    guarded: list[bool] = []

    def guard(call: Any) -> Any:
        """Where the batcher puts its deadline: the pipeline's rerun must go through it."""
        guarded.append(True)
        return call()

    got = by_plan.score(columns, proba=True, finite=True, guard=guard)
    expected = by_pipeline.score(columns, proba=True, finite=True)
    assert [a.tolist() for a in got] == [a.tolist() for a in expected]
    assert guarded == [True]
    with pytest.raises(PredictionFailed) as plan_error:
        by_plan.score(columns, proba=True, finite=False)
    with pytest.raises(PredictionFailed) as pipeline_error:
        by_pipeline.score(columns, proba=True, finite=False)
    assert plan_error.value.message == pipeline_error.value.message
