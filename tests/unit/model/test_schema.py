"""The input schema: what a fitted first step reveals, what a sample refines, and the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import LabelBinarizer, OneHotEncoder, OrdinalEncoder, StandardScaler

from service.errors import ArtifactUnreadable
from service.model import compat, payload, schema
from service.model.schema import Column, Schema

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)

FRAME = pd.DataFrame(
    {
        "a": [1.0, 2.0, 3.0, 4.0],
        "b": [5.0, 6.0, 7.0, 8.0],
        "c": ["x", "y", "x", "y"],
        "d": [1, 2, 1, 2],
        "e": [0.0, 1.0, 0.0, 1.0],
    }
)
LABELS = [0, 1, 0, 1]


def fitted(first: Any, frame: pd.DataFrame = FRAME) -> Pipeline:
    return Pipeline([("first", first), ("model", LogisticRegression())]).fit(frame, LABELS)


def described(inferred: Schema) -> dict[str, tuple[str, Any, bool]]:
    return {c.name: (c.kind, c.categories, c.unknown_categories) for c in inferred.columns}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float64(1.5), 1.5),
        (np.int64(3), 3),
        (np.bool_(True), True),
        (np.str_("x"), "x"),
        ("x", "x"),
        (7, 7),
        (None, None),
        (float("nan"), None),
        (np.float64("nan"), None),
    ],
)
def test_native_gives_json_native_values(value: Any, expected: Any) -> None:
    result = schema.native(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("missing", [np.float32("nan"), pd.NA], ids=["float32-nan", "pd.NA"])
def test_native_maps_every_missing_value_to_none(missing: Any) -> None:
    assert schema.native(missing) is None


def test_column_transformer_by_index_with_an_encoder_in_a_pipeline_and_a_drop() -> None:
    first = ColumnTransformer(
        [
            ("num", StandardScaler(), [0, 1]),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["c"],
            ),
            ("gone", "drop", ["e"]),
        ],
        remainder="passthrough",
    )
    inferred = schema.infer(fitted(first))
    assert inferred.source == "pipeline"
    assert described(inferred) == {
        "a": ("number", None, False),
        "b": ("number", None, False),
        "c": ("string", ("x", "y"), True),
        "d": ("number", None, False),
    }
    assert inferred.example == {"a": 0.0, "b": 0.0, "c": "x", "d": 0.0}


def test_numeric_categories_keep_their_kind_and_refuse_unknowns() -> None:
    first = ColumnTransformer([("ord", OrdinalEncoder(), ["d"]), ("num", "passthrough", ["a"])])
    inferred = schema.infer(fitted(first))
    assert described(inferred) == {"d": ("number", (1, 2), False), "a": ("number", None, False)}
    assert type(inferred.columns[0].categories[0]) is int  # native, not numpy
    assert inferred.example == {"d": 1, "a": 0.0}


def test_a_column_read_twice_is_described_by_its_first_reader() -> None:
    first = ColumnTransformer(
        [("num", StandardScaler(), ["d"]), ("ord", OrdinalEncoder(), ["d", "c"])]
    )
    assert described(schema.infer(fitted(first))) == {
        "d": ("number", None, False),
        "c": ("string", ("x", "y"), False),
    }


def test_mapper_columns_given_as_a_name_or_a_list() -> None:
    mapper = DataFrameMapper([("a", None), (["c"], OneHotEncoder(handle_unknown="ignore"))])
    assert described(schema.infer(fitted(mapper))) == {
        "a": ("number", None, False),
        "c": ("string", ("x", "y"), True),
    }


def test_column_transformer_slice_of_columns() -> None:
    first = ColumnTransformer([("num", StandardScaler(), slice(0, 2))])
    assert schema.infer(fitted(first)).names == ("a", "b")


def test_column_transformer_single_text_column() -> None:
    frame = pd.DataFrame({"text": ["red blue", "blue green", "green red", "red red"], "a": 1.0})
    first = ColumnTransformer([("words", TfidfVectorizer(), "text"), ("num", "passthrough", ["a"])])
    assert schema.infer(fitted(first, frame)).names == ("text", "a")


def test_example_row_takes_a_known_category_or_a_zero_of_the_kind() -> None:
    columns = (
        Column("n", "number"),
        Column("i", "integer"),
        Column("b", "boolean"),
        Column("s", "string"),
        Column("c", "string", categories=("red", "blue")),
    )
    row = schema.example_row(columns)
    assert row == {"n": 0.0, "i": 0, "b": False, "s": "", "c": "red"}
    assert [type(v) for v in row.values()] == [float, int, bool, str, str]


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [
        ("bool", "boolean"),
        ("boolean", "boolean"),
        ("int64", "integer"),
        ("Int64", "integer"),
        ("uint8", "integer"),
        ("float32", "number"),
        ("float64", "number"),
        ("object", "string"),
        ("string", "string"),
        ("category", "string"),
    ],
)
def test_kind_of_a_pandas_dtype(dtype: str, kind: str) -> None:
    assert schema.kind_of(pd.Series([], dtype=dtype).dtype) == kind


def test_a_sample_refines_kinds_nulls_and_the_example(
    demo_pipeline: Pipeline, demo_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    sample = demo_data[0].head(20).copy()
    sample.loc[3, "income"] = np.nan
    refined = schema.from_sample(demo_pipeline, sample)
    assert refined.source == "schema file"
    assert {c.name: (c.kind, c.nullable) for c in refined.columns} == {
        "age": ("integer", False),
        "income": ("number", True),
        "debt_ratio": ("number", False),
        "region": ("string", False),
        "employment": ("string", False),
    }
    region = refined.columns[3]
    assert region.categories == ("east", "north", "south", "west")
    assert region.unknown_categories is True
    first = sample.iloc[0]
    assert refined.example == {name: first[name] for name in refined.names}
    assert type(refined.example["age"]) is int
    assert set(refined.packed) == {"sklearn", "python", "packed_at"}
    assert refined.packed["sklearn"] == sklearn.__version__


def test_a_sample_without_the_model_columns_is_refused(
    demo_pipeline: Pipeline, demo_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    sample = demo_data[0].drop(columns=["income", "region"])
    with pytest.raises(ValueError, match=r"lacks columns the model reads: \['income', 'region'\]"):
        schema.from_sample(demo_pipeline, sample)


def test_the_schema_file_round_trips(
    tmp_path: Path, demo_pipeline: Pipeline, demo_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    packed = schema.from_sample(demo_pipeline, demo_data[0])
    path = tmp_path / "pipeline.schema.json"
    content = schema.dumps(packed)
    assert content.endswith(b"\n")
    assert json.loads(content)["columns"][3]["categories"] == ["east", "north", "south", "west"]
    path.write_bytes(content)
    assert schema.load(path) == packed


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json", "Expecting value"),
        ('{"columns": [], "example": {}}', "'packed'"),
        ('{"columns": [{"name": "a"}], "example": {}, "packed": {}}', "'kind'"),
        (
            '{"columns": [{"name": "a", "kind": "date", "nullable": false}], '
            '"example": {}, "packed": {}}',
            "unknown kind for columns ['a']",
        ),
        ('{"columns": 3, "example": {}, "packed": {}}', "not iterable"),
    ],
    ids=["not-json", "no-packed", "no-kind", "bad-kind", "columns-not-a-list"],
)
def test_a_broken_schema_file_is_an_unreadable_artifact(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "pipeline.schema.json"
    path.write_text(content)
    with pytest.raises(ArtifactUnreadable, match=f"schema file {path} is invalid") as caught:
        schema.load(path)
    assert fragment in caught.value.message


def test_a_missing_schema_file_is_an_unreadable_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactUnreadable, match="No such file"):
        schema.load(tmp_path / "absent.schema.json")


def test_text_categories_with_a_missing_value_stay_text_and_accept_null() -> None:
    """The encoder learnt the missing value as a category: null is a valid input, and the
    column stays text (it used to be called a number, so the service refused its text)."""
    frame = FRAME.assign(c=pd.array(["x", None, "y", "x"], dtype="str"))
    pipeline = fitted(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])]), frame
    )
    inferred = schema.infer(pipeline)
    assert {c.name: (c.kind, c.nullable, c.categories) for c in inferred.columns} == {
        "c": ("string", True, ("x", "y", None))
    }
    assert list(payload.validate(inferred, {"c": ["y", None]}, unknown="reject")) == ["c"]
    # a sample without nulls does not take the null away
    assert schema.from_sample(pipeline, FRAME).columns == inferred.columns


def test_numeric_categories_with_a_missing_value_accept_null() -> None:
    frame = FRAME.assign(e=[0.0, np.nan, 1.0, 0.0])
    first = ColumnTransformer([("ord", OrdinalEncoder(encoded_missing_value=-1), ["e"])])
    (column,) = schema.infer(fitted(first, frame)).columns
    assert (column.kind, column.nullable, column.categories) == ("number", True, (0.0, 1.0, None))


PASSED_THROUGH: dict[str, tuple[list[tuple[Any, ...]], tuple[str, ...]]] = {
    "encoded column, then a look-alike": ([(["c"], OneHotEncoder())], ("c", "c_x", "a", "b", "d")),
    "class names, alias and prefix": (
        [("c", LabelBinarizer(), {"alias": "colour", "prefix": "p_"})],
        ("c", "c_x", "a", "b", "d"),
    ),
    "two columns through a transformer list": (
        [(["a", "b"], [StandardScaler()]), (["c"], OrdinalEncoder())],
        ("a", "b", "c", "c_x", "d"),
    ),
}


@pytest.mark.parametrize(("entries", "names"), PASSED_THROUGH.values(), ids=PASSED_THROUGH.keys())
def test_mapper_default_none_adds_the_columns_it_passes_through(
    entries: list[tuple[Any, ...]], names: tuple[str, ...]
) -> None:
    """After the mapper's entries come the columns it passes through, in the frame's order,
    read from the names its last transform wrote (they survive pickling)."""
    frame = FRAME.assign(c=["x", "y", "z", "x"], c_x=[3.0, 1.0, 2.0, 0.0])
    frame = frame[["c", "c_x", "a", "b", "d"]]
    fresh = fitted(DataFrameMapper(entries, default=None), frame)
    pipeline = cloudpickle.loads(cloudpickle.dumps(fresh))
    inferred = schema.infer(pipeline)
    assert inferred.names == names
    assert inferred.columns[names.index("d")] == Column("d")  # numeric until a sample says
    assert schema.from_sample(pipeline, frame).columns[names.index("d")].kind == "integer"


def test_mapper_default_none_leaves_out_dropped_columns() -> None:
    mapper = DataFrameMapper([(["c"], OneHotEncoder())], default=None, drop_cols=["b", "e"])
    assert schema.infer(fitted(mapper)).names == ("c", "a", "d")


def test_passed_through_columns_are_not_guessed_when_the_names_do_not_parse() -> None:
    """A mapper fitted with ``fit`` alone, never transformed, wrote no names: only its
    entries are known."""
    pipeline = fitted(DataFrameMapper([(["c"], OneHotEncoder())], default=None))
    pipeline.steps[0][1].transformed_names_ = []
    assert schema.infer(pipeline).names == ("c",)
