"""The client's typed objects have exactly the properties of the served OpenAPI document's
schemas, so a field added to or dropped from a response shows up here."""

from __future__ import annotations

import pytest

from nnq import resources

# client class -> the schema in /api/v1/openapi.json it mirrors
MIRRORS = {
    resources.Job: "JobOut", resources.Progress: "Progress", resources.Metrics: "MetricsOut",
    resources.MetricRow: "MetricRow", resources.Model: "ModelOut",
    resources.Tensor: "TensorOut", resources.Sweep: "SweepOut", resources.Trial: "TrialOut",
    resources.Promotion: "PromoteOut", resources.Alias: "AliasOut",
    resources.Prediction: "PredictOut", resources.Health: "HealthOut",
}
# list endpoints send summaries: every summary field is a field of the full resource
SUMMARIES = {resources.Model: "ModelSummary", resources.Sweep: "SweepSummary"}


@pytest.fixture
def schemas(client):
    return client.transport.get("/openapi.json")["components"]["schemas"]


def test_each_resource_has_exactly_its_schemas_properties(schemas):
    for cls, name in MIRRORS.items():
        assert set(cls.model_fields) == set(schemas[name]["properties"]), name


def test_summaries_are_subsets_and_counts_are_the_trial_statuses(schemas):
    for cls, name in SUMMARIES.items():
        assert set(schemas[name]["properties"]) <= set(cls.model_fields), name
    from nnq.status import TRIAL_STATUSES

    assert set(schemas["TrialCounts"]["properties"]) == {*TRIAL_STATUSES, "total"}
