from pathlib import Path

import pytest

from tabserve.errors import ConfigurationError
from tabserve.settings import DEFAULT_CONFIG_PATH, load_settings


def test_committed_configuration_loads() -> None:
    settings = load_settings(DEFAULT_CONFIG_PATH, environ={})
    assert settings.model.name == "breast_cancer"
    assert settings.served_tag == "breast_cancer:latest"
    assert settings.serving.max_batch_records == 10_000


def test_wrong_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("serving:\n  max_batch_recordz: 5\n")
    with pytest.raises(ConfigurationError, match=r"serving\.max_batch_recordz: unknown key"):
        load_settings(config, environ={})


def test_bad_value_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  test_size: 2\n")
    with pytest.raises(ConfigurationError, match=r"training\.test_size"):
        load_settings(config, environ={})


def test_environment_overrides_the_served_tag() -> None:
    settings = load_settings(DEFAULT_CONFIG_PATH, environ={"TABSERVE_MODEL": "other:v2"})
    assert settings.served_tag == "other:v2"


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_environment_overrides_thresholds_and_urls() -> None:
    environ = {
        "TABSERVE_DRIFT_SHARE": "0.3",
        "TABSERVE_DATABASE_URL": "sqlite:///x.db",
        "TABSERVE_MIN_SAMPLES": "9",
        "TABSERVE_WORKERS": "3",
    }
    settings = load_settings(DEFAULT_CONFIG_PATH, environ=environ)
    assert settings.monitoring.drift_share == 0.3 and settings.monitoring.min_samples == 9
    assert settings.serving.workers == 3
    assert settings.monitoring.url == "sqlite:///x.db"


def test_a_bad_environment_value_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"monitoring\.drift_share"):
        load_settings(DEFAULT_CONFIG_PATH, environ={"TABSERVE_DRIFT_SHARE": "lots"})


def test_kafka_needs_kafka_legal_names(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("streaming:\n  transport: kafka\n")  # default names hold ':'
    with pytest.raises(ConfigurationError, match=r"input_stream 'tabserve:input' is not a Kafka name"):
        load_settings(config, environ={})


def _config(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    return config


def test_without_variants_there_is_one_named_default() -> None:
    settings = load_settings(DEFAULT_CONFIG_PATH, environ={})
    assert settings.variants == {"default": "breast_cancer:latest"}
    assert settings.policy.strategy == "single" and settings.policy.active == "default"


def test_variants_fill_in_the_roles_in_order(tmp_path: Path) -> None:
    config = _config(tmp_path, "deployment:\n  variants: {champion: 'm:1', candidate: 'm:2'}\n")
    settings = load_settings(config, environ={})
    policy = settings.policy
    assert (policy.active, policy.champion, policy.candidate) == ("champion", "champion", "candidate")
    assert settings.served_tag == "m:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployment:\n  variants: {a: 'm:1'}\n  policy: {strategy: single, active: b}\n", "no variant 'b'"),
        ("deployment:\n  variants: {a: 'm:1'}\n  policy: {strategy: canary}\n", "canary needs both"),
        ("deployment:\n  variants: {a: 'm:1', b: 'm:2'}\n  policy: {strategy: ab}\n", "positive sum"),
        ("deployment:\n  variants: {'a b': 'm:1'}\n", "variant name 'a b'"),
        ("deployment:\n  rollout: {steps: [50, 20, 100]}\n", "steps must increase"),
        ("deployment:\n  rollout: {steps: [5, 50]}\n", "last step must be 100"),
        ("serving:\n  model: 'm:1'\ndeployment:\n  variants: {a: 'm:2'}\n", "keep one"),
    ],
)
def test_bad_deployment_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(_config(tmp_path, text), environ={})


def test_workers_and_threads_default_to_auto_and_refuse_zero(tmp_path: Path) -> None:
    committed = load_settings(DEFAULT_CONFIG_PATH, environ={}).serving
    assert committed.workers is None and committed.threads_per_worker is None  # null = auto
    chosen = load_settings(_config(tmp_path, "serving: {workers: 2, threads_per_worker: 3}\n"), environ={})
    assert (chosen.serving.workers, chosen.serving.threads_per_worker) == (2, 3)
    with pytest.raises(ConfigurationError, match=r"serving\.threads_per_worker"):
        load_settings(_config(tmp_path, "serving: {threads_per_worker: 0}\n"), environ={})


def test_relative_paths_are_relative_to_the_configuration_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    config = project / "configuration.yaml"
    config.write_text(
        "data:\n  source: data/train.csv\n"
        "serving:\n  task_dir: /srv/tasks\n"  # absolute: kept as it is
        "monitoring:\n  reports_dir: out/reports\n"  # sqlite_path, spool_dir, workspace: defaults
    )
    seen, databases = [], []
    for cwd, path in ((project, "configuration.yaml"), (tmp_path, "project/configuration.yaml")):
        monkeypatch.chdir(cwd)  # the service runs from one folder, a job from another
        settings = load_settings(path, environ={})
        seen.append(settings)
        databases.append(Path(settings.monitoring.sqlite_path).absolute())  # what SQLite opens here
    assert databases == [project / "var" / "predictions.db"] * 2
    assert seen[0] == seen[1]
    monitoring = seen[0].monitoring
    assert monitoring.url == f"sqlite:///{project / 'var' / 'predictions.db'}"
    assert Path(monitoring.spool_dir) == project / "var" / "spool"
    assert Path(monitoring.reports_dir) == project / "out" / "reports"
    assert Path(monitoring.workspace) == project / "reports" / "workspace"
    assert Path(seen[0].data.source) == project / "data" / "train.csv"
    assert seen[0].serving.task_dir == "/srv/tasks"


def test_a_bundled_dataset_is_not_a_path(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  source: sklearn:breast_cancer\n")
    assert load_settings(config, environ={}).data.source == "sklearn:breast_cancer"
