"""VERSION_SKEW end to end in-process: a pipeline pickled by another scikit-learn is refused
at start-up and on upload, or served with a warning; one pickled by this one loads silently."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from unittest import mock

import cloudpickle
import pytest
import sklearn
import sklearn.base
from packaging.version import Version
from sklearn.pipeline import Pipeline

from service.errors import VersionSkew
from service.http.app import create_app
from service.model import signing
from service.settings import Settings
from tests.unit.conftest import SIGNING_KEY
from tests.unit.http.test_admin_routes import post_artifact

RUNNING = Version(sklearn.__version__)
OLDER_MINOR = f"{RUNNING.major}.{RUNNING.minor - 1}.0"
OTHER_PATCH = f"{RUNNING.major}.{RUNNING.minor}.{RUNNING.micro + 1}"


def pickled_by(pipeline: Pipeline, version: str) -> bytes:
    """The pipeline's pickle as scikit-learn ``version`` would write it: every estimator's
    state records the version that pickled it (``BaseEstimator.__getstate__``)."""
    with mock.patch.object(sklearn.base, "__version__", version):
        return cloudpickle.dumps(pipeline)


def artifact(folder: Path, data: bytes) -> Path:
    path = folder / "pipeline.pkl"
    path.write_bytes(data)
    signing.write_signature(path, SIGNING_KEY.encode())
    return path


def settings(path: Path, **changes: Any) -> Settings:
    return Settings(model_path=path, signing_key=SIGNING_KEY, **changes)


def test_another_minor_version_stops_the_boot_naming_both(
    demo_pipeline: Pipeline, tmp_path: Path
) -> None:
    path = artifact(tmp_path, pickled_by(demo_pipeline, OLDER_MINOR))
    with pytest.raises(VersionSkew) as refused:
        create_app(settings(path))
    message = refused.value.message
    assert "\n" not in message
    assert f"scikit-learn {OLDER_MINOR}" in message
    assert f"scikit-learn {sklearn.__version__}" in message
    assert "VERSION_SKEW=warn" in message
    assert refused.value.details == {
        "trained_sklearn": OLDER_MINOR,
        "running_sklearn": sklearn.__version__,
    }


def test_warn_serves_it_and_says_so(
    demo_pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = artifact(tmp_path, pickled_by(demo_pipeline, OLDER_MINOR))
    with caplog.at_level(logging.WARNING):
        client = create_app(settings(path, version_skew="warn")).test_client()
    skewed = [r.getMessage() for r in caplog.records if "version skew" in r.getMessage()]
    assert len(skewed) == 1
    assert OLDER_MINOR in skewed[0] and sklearn.__version__ in skewed[0]
    versions = client.get("/model").get_json()["versions"]
    assert versions["packed"]["sklearn"] == OLDER_MINOR
    assert versions["running"]["sklearn"] == sklearn.__version__
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'trained_sklearn="{OLDER_MINOR}"' in metrics


def test_another_patch_release_only_warns(
    demo_pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = artifact(tmp_path, pickled_by(demo_pipeline, OTHER_PATCH))
    with caplog.at_level(logging.WARNING):
        client = create_app(settings(path)).test_client()
    assert any(OTHER_PATCH in r.getMessage() for r in caplog.records)
    assert client.get("/readyz").status_code == 200


def test_a_matching_pipeline_loads_silently(
    demo_pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = artifact(tmp_path, cloudpickle.dumps(demo_pipeline))
    with caplog.at_level(logging.WARNING):
        client = create_app(settings(path)).test_client()
    assert not [r for r in caplog.records if "skew" in r.getMessage()]
    assert client.get("/model").get_json()["versions"]["packed"]["sklearn"] == (sklearn.__version__)


def test_an_upload_pickled_by_another_minor_version_gets_422(
    client: Any, demo_pipeline: Pipeline
) -> None:
    served = client.get("/model").get_json()["sha256"]
    response = post_artifact(client, pickled_by(demo_pipeline, OLDER_MINOR))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "version_skew"
    assert error["details"] == {
        "trained_sklearn": OLDER_MINOR,
        "running_sklearn": sklearn.__version__,
    }
    assert client.get("/model").get_json()["sha256"] == served
