"""Job definitions: loading (dict, YAML, Databricks JSON), validation, Quartz cron."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from jobtasks import fn_task

from lakebox.errors import InvalidInput, NotFound
from lakebox.jobs import QuartzCron, load_job_spec, validate_job_settings


def _job(*tasks: dict, **extra: object) -> dict:
    return {"name": "j", "tasks": list(tasks), **extra}


# ----------------------------------------------------------------------------- cron
@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 30 6 ? * MON-FRI", "2026-01-02T07:00:00", "2026-01-05T06:30:00"),  # Fri → Mon
        ("0 0 12 ? * 2", "2026-01-02T07:00:00", "2026-01-05T12:00:00"),  # Quartz 2 = Monday
        ("0 0 12 ? * 1", "2026-01-02T07:00:00", "2026-01-04T12:00:00"),  # Quartz 1 = Sunday
        ("0 0 12 ? * 6#2", "2026-01-02T07:00:00", "2026-01-09T12:00:00"),  # 2nd Friday
        ("*/15 * * * * ?", "2026-01-02T07:00:01", "2026-01-02T07:00:15"),
        ("0 0 0 L * ?", "2026-02-02T00:00:00", "2026-02-28T00:00:00"),
        ("0 0 6 * * ? 2027", "2026-05-01T00:00:00", "2027-01-01T06:00:00"),
    ],
)
def test_quartz_next_fire(expression, after, expected):
    moment = datetime.fromisoformat(after).replace(tzinfo=timezone.utc)
    assert QuartzCron(expression).next_after(moment) == datetime.fromisoformat(expected).replace(
        tzinfo=timezone.utc
    )


def test_quartz_time_zone_and_range():
    cron = QuartzCron("0 0 9 * * ?", "Europe/Paris")
    first = cron.next_after(datetime(2026, 1, 2, 7, tzinfo=timezone.utc))
    assert first == datetime(2026, 1, 2, 8, tzinfo=timezone.utc)  # 09:00 CET
    every = QuartzCron("* * * * * ?")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    fires = every.fires_between(start, start.replace(second=30), limit=5)
    assert [f.second for f in fires] == [26, 27, 28, 29, 30]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 0 * * *", "Quartz needs 6 or 7"),
        ("0 0 25 * * ?", "cannot parse"),
        ("0 0 1 ? * 9", "outside Quartz's 1-7"),
        ("every day", "6 or 7"),
    ],
)
def test_bad_cron_is_explained(expression, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        QuartzCron(expression)


def test_unknown_time_zone():
    with pytest.raises(InvalidInput, match="IANA"):
        QuartzCron("0 0 1 * * ?", "Mars/Olympus")


# ----------------------------------------------------------------------------- loading
def test_load_yaml_file_resolves_relative_paths(tmp_path):
    (tmp_path / "etl.py").write_text("print('hi')\n")
    (tmp_path / "job.yaml").write_text(
        "name: nightly\n"
        "schedule: {quartz_cron_expression: '0 0 6 * * ?', timezone_id: UTC}\n"
        "tasks:\n"
        "  - task_key: etl\n"
        "    spark_python_task: {python_file: etl.py, parameters: [--day, 1]}\n"
    )
    spec = load_job_spec(tmp_path / "job.yaml")
    assert spec["tasks"][0]["spark_python_task"]["python_file"] == str(tmp_path / "etl.py")
    job = validate_job_settings(spec)
    assert job["tasks"][0]["spark_python_task"]["parameters"] == ["--day", "1"]
    assert job["schedule"]["pause_status"] == "UNPAUSED"
    assert job["max_concurrent_runs"] == 1


def test_load_databricks_json_shapes():
    settings = {"name": "x", "tasks": [{"task_key": "a", "sql_task": {"query": "SELECT 1"}}]}
    assert load_job_spec(json.dumps({"job_id": 7, "settings": settings})) == settings
    assert load_job_spec({"resources": {"jobs": {"x": settings}}}) == settings
    with pytest.raises(NotFound, match="does not exist"):
        load_job_spec("/no/such/job.yaml")
    with pytest.raises(InvalidInput, match="mapping"):
        load_job_spec("- just\n- a list\n")


# ----------------------------------------------------------------------------- validation
def test_cycle_is_reported_with_its_path():
    with pytest.raises(InvalidInput, match=r"cycle: a -> c -> b -> a \(x -> y: x depends on y\)"):
        validate_job_settings(
            _job(
                fn_task("a", "echo", depends_on=[{"task_key": "c"}]),
                fn_task("b", "echo", depends_on=[{"task_key": "a"}]),
                fn_task("c", "echo", depends_on=[{"task_key": "b"}]),
            )
        )


def test_unknown_task_key_suggests():
    with pytest.raises(InvalidInput, match="unknown task_key 'trian'.*Did you mean 'train'"):
        validate_job_settings(
            _job(
                fn_task("train", "echo"),
                fn_task("eval", "echo", depends_on=[{"task_key": "trian"}]),
            )
        )


def test_duplicate_task_key_and_self_dependency():
    with pytest.raises(InvalidInput, match="used by more than one task"):
        validate_job_settings(_job(fn_task("a", "echo"), fn_task("a", "echo")))
    with pytest.raises(InvalidInput, match="depends on itself"):
        validate_job_settings(_job(fn_task("a", "echo", depends_on=["a"])))


def test_non_importable_function():
    with pytest.raises(InvalidInput, match="cannot be imported.*no_such_module"):
        validate_job_settings(
            _job({"task_key": "a", "python_function_task": {"function": "no_such_module:run"}})
        )
    with pytest.raises(InvalidInput, match="has no attribute 'ad'.*Did you mean 'add'"):
        validate_job_settings(_job(fn_task("a", "ad")))


def test_parameters_of_wrong_type_or_name():
    with pytest.raises(InvalidInput, match="parameter 'a' must be int, got str 'two'"):
        validate_job_settings(_job(fn_task("a", "add", parameters={"a": "two"})))
    with pytest.raises(InvalidInput, match="do not fit the signature"):
        validate_job_settings(_job(fn_task("a", "add", parameters={"z": 1})))
    # references are resolved at run time, so they are not type-checked here
    validate_job_settings(_job(fn_task("a", "add", parameters={"a": "{{job.parameters.n}}"})))
    with pytest.raises(InvalidInput, match="max_retries must be an integer"):
        validate_job_settings(_job(fn_task("a", "echo", max_retries="3")))
    with pytest.raises(InvalidInput, match="job parameter 'p': default must be a string"):
        validate_job_settings(
            _job(fn_task("a", "echo"), parameters=[{"name": "p", "default": {"x": 1}}])
        )


def test_clusters_must_exist():
    with pytest.raises(InvalidInput, match="unknown job_cluster_key 'big'"):
        validate_job_settings(_job(fn_task("a", "echo", job_cluster_key="big")))
    with pytest.raises(InvalidInput, match="unknown all-purpose cluster 'warm'"):
        validate_job_settings(
            _job(fn_task("a", "echo", existing_cluster_id="warm")), cluster_exists=lambda _: False
        )
    job = validate_job_settings(
        {
            **_job(fn_task("a", "echo", job_cluster_key="big")),
            "job_clusters": [
                {"job_cluster_key": "big", "new_cluster": {"spark_env_vars": {"X": "1"}}}
            ],
        }
    )
    assert job["tasks"][0]["job_cluster_key"] == "big"


def test_other_bad_input():
    with pytest.raises(InvalidInput, match="run_if 'SOMETIMES'"):
        validate_job_settings(_job(fn_task("a", "echo", run_if="SOMETIMES")))
    with pytest.raises(InvalidInput, match="exactly one task type"):
        validate_job_settings(_job({"task_key": "a"}))
    with pytest.raises(InvalidInput, match="unknown field 'depend_on'.*'depends_on'"):
        validate_job_settings(_job(fn_task("a", "echo", depend_on=["b"])))
    with pytest.raises(InvalidInput, match="Bad Quartz cron"):
        validate_job_settings(
            _job(fn_task("a", "echo"), schedule={"quartz_cron_expression": "0 0 * * *"})
        )
    with pytest.raises(InvalidInput, match="unknown lakebox_task type 'sleeep'.*'sleep'"):
        from lakebox.jobs import task_types

        validate_job_settings(
            _job({"task_key": "a", "lakebox_task": {"type": "sleeep"}}), task_types=task_types()
        )
    with pytest.raises(InvalidInput, match="python_file '/nope.py' does not exist"):
        validate_job_settings(
            _job({"task_key": "a", "spark_python_task": {"python_file": "/nope.py"}})
        )
    with pytest.raises(InvalidInput, match="table_names"):
        validate_job_settings(_job(fn_task("a", "echo"), trigger={"table_update": {}}))
