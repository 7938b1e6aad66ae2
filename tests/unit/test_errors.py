from lakebox import errors


def test_every_error_has_a_code_and_status():
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.LakeboxError):
            assert cls.error_code.isupper()
            assert 400 <= cls.http_status < 600


def test_to_json_is_databricks_shaped():
    err = errors.NotFound("Table 'main.a.b' does not exist.")
    assert err.to_json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Table 'main.a.b' does not exist.",
    }


def test_missing_dependency_names_the_extra():
    err = errors.MissingDependency("pyspark", "spark", "The Spark engine")
    assert "pip install 'lakebox[spark]'" in str(err)


def test_close_matches():
    assert "'main.sales.orders'" in errors.close_matches(
        "main.sales.ordrs", ["main.sales.orders", "main.x.y"]
    )
    assert errors.close_matches("zzz", ["main.sales.orders"]) == ""
