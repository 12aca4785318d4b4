"""The training report's guess at personal columns, and the log policy it suggests."""

from __future__ import annotations

from tabserve.schema import FeatureSchema, FeatureSpec
from tabserve.training.personal_columns import personal_columns, suggestion_lines
from tabserve.training.report import report_lines
from tabserve.training.trainer import TrainingResult

SCHEMA = FeatureSchema(
    features=[
        FeatureSpec(name="contact", kind="categorical", dtype="object", categories=["a@x.org", "b@y.com"]),
        FeatureSpec(name="Customer Name", kind="categorical", dtype="object", categories=["Ana", "Bo"]),
        FeatureSpec(
            name="line", kind="categorical", dtype="object", categories=["+33 1 23 45 67 89", "0612345678"]
        ),
        FeatureSpec(name="city", kind="categorical", dtype="object", categories=["paris", "lyon"]),
        FeatureSpec(name="income", kind="numeric", dtype="float64"),
        FeatureSpec(name="filename", kind="categorical", dtype="object", categories=["a.csv"]),
    ]
)


def test_columns_are_found_by_their_values_or_names_and_others_are_not() -> None:
    found = personal_columns(SCHEMA, dropped=["email", "ticket"])
    assert found == {
        "contact": "its values look like email addresses",
        "Customer Name": "a person's name, by its column name",
        "line": "its values look like phone numbers",
        "email": "an email column, by its name",
    }


def test_the_report_says_so_and_suggests_a_policy() -> None:
    result = TrainingResult(tag="m:1", task="classification", metrics={}, rows=10, schema=SCHEMA)
    text = "\n".join(report_lines(result))
    assert "personal-looking columns" in text
    assert "monitoring.log_policy: {contact: hash, Customer Name: hash, line: hash}" in text
    assert suggestion_lines({}) == []
