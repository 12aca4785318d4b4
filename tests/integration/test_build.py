"""`bentoml build`: the Bento holds the model and serving code, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bentoml
import pytest

from tabserve.model_store import StoredModel
from tests.servers import BENTOML, REPO


def test_bento_contains_only_what_serving_needs(default_model: StoredModel) -> None:
    subprocess.run([BENTOML, "build", "--output", "tag"], cwd=REPO, check=True, capture_output=True)
    bento = bentoml.get("tabserve:latest")
    src = Path(bento.path) / "src"
    files = {str(path.relative_to(src)) for path in src.rglob("*") if path.is_file()}
    assert {"service.py", "configuration.yaml", "tabserve/predictor.py"} <= files
    forbidden = ("tests/", "train/", "bench/", ".venv/", ".tools/", "__pycache__", "reports/")
    assert not [name for name in files if name.startswith(forbidden) or "__pycache__" in name]
    assert [str(model.tag) for model in bento.info.all_models] == [default_model.tag]


def test_every_variant_is_packed(
    default_model: StoredModel, candidate_model: StoredModel, tmp_path: Path
) -> None:
    config = tmp_path / "variants.yaml"
    config.write_text(
        f"deployment:\n  variants: {{champion: '{default_model.tag}', candidate: '{candidate_model.tag}'}}\n"
    )
    env = {**os.environ, "TABSERVE_CONFIG": str(config)}
    subprocess.run([BENTOML, "build", "--output", "tag"], cwd=REPO, env=env, check=True, capture_output=True)
    packed = {str(model.tag) for model in bentoml.get("tabserve:latest").info.all_models}
    assert packed == {default_model.tag, candidate_model.tag}


EXTRAS = {"serving": ["--extra", "kafka"], "monitoring": ["--extra", "kafka", "--extra", "monitoring"]}


@pytest.mark.parametrize("image", sorted(EXTRAS))
def test_image_requirements_match_the_lock_file(image: str) -> None:
    uv = Path(sys.executable).parent.parent.parent / ".tools" / "bin" / "uv"
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-editable"]
        + EXTRAS[image],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    committed = (REPO / "requirements" / f"{image}.txt").read_text()
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
    assert strip(exported) == strip(committed), "run `make requirements` after changing uv.lock"


def test_only_the_monitoring_image_installs_evidently() -> None:
    def pinned(image: str) -> set[str]:
        lines = (REPO / "requirements" / f"{image}.txt").read_text().splitlines()
        return {line.split("==")[0] for line in lines if "==" in line and not line.startswith(" ")}

    assert "evidently" not in pinned("serving")
    assert {"evidently", "plotly", "statsmodels"} <= pinned("monitoring")
    assert pinned("serving") < pinned("monitoring")
