import pytest

from dashboard_lib.params import ERR_UNKNOWN_PARAM, Param, parse_assignments, resolve_params

LR = Param("lr", 1e-3, low=0, low_open=True, high=1.0, symbol="η")
EPOCHS = Param("epochs", 20, kind="int", low=1, high=2000)
MODE = Param("mode", "a", kind="choice", choices=("a", "b"))
FLAG = Param("flag", False, kind="bool")


def test_defaults_and_coercion_from_strings():
    values = resolve_params([LR, EPOCHS, MODE, FLAG], {"lr": "0.01", "epochs": "5", "mode": "b", "flag": "yes"}, owner="m")
    assert values == {"lr": 0.01, "epochs": 5, "mode": "b", "flag": True}
    assert resolve_params([LR, EPOCHS], None, owner="m") == {"lr": 1e-3, "epochs": 20}


@pytest.mark.parametrize("param, value, fragment", [
    (LR, 0, "η (lr) = 0 is outside its range (0, 1]"),
    (LR, 2, "outside its range (0, 1]"),
    (LR, "nan", "must be a finite number"),
    (LR, "abc", "must be a number"),
    (EPOCHS, 2.5, "must be a whole number"),
    (EPOCHS, 0, "outside its range [1, 2000]"),
    (MODE, "c", "is not one of ['a', 'b']"),
    (FLAG, "maybe", "must be true or false"),
])
def test_invalid_values_name_the_range(param, value, fragment):
    with pytest.raises(ValueError) as err:
        param.coerce(value, owner="method m")
    assert fragment in str(err.value)
    assert str(err.value).startswith("method m: ")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        resolve_params([LR, EPOCHS], {"gamma": 1}, owner="method m")
    assert str(err.value) == ERR_UNKNOWN_PARAM.format(what="hyperparameter", name="gamma", owner="method m", valid="lr, epochs")


def test_parse_assignments():
    assert parse_assignments(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_assignments(["novalue"])


def test_every_quick_preset_names_declared_schedule_settings_within_range():
    from dashboard_lib.methods import REGISTRY

    weights = {"alpha", "beta", "gamma", "lam", "tau", "alpha_f", "alpha_s", "lambda_adv", "mu", "lr", "lambda_en"}
    for method_id, cls in REGISTRY.items():
        assert cls.preset("paper") == cls.preset("paper", "upload") == {}
        for quick in (cls.preset("quick"), cls.preset("quick", "upload")):  # on the built-in data, on a table
            assert not (weights & set(quick)), f"{method_id}: a quick preset changes a weight of the method"
            resolved = cls(**quick).hparams  # each value is declared and inside its range
            assert all(resolved[name] == value for name, value in quick.items())
        assert cls.preset("quick", "digits") == cls.quick and cls.preset("quick", "upload") == {**cls.quick, **cls.quick_tables}
    with pytest.raises(ValueError, match="unknown schedule preset 'fast'; valid: paper, quick"):
        REGISTRY["dfc"].preset("fast")


def test_every_quick_demo_says_how_long_it_takes_and_its_data_exists():
    """The Train page says the measured minutes before the click (bench/bench_quick_presets.py, at most 3 on 2 cores),
    and the data a demo suggests is a registered dataset with valid options."""
    from dashboard_lib.data import resolve_options
    from dashboard_lib.methods import REGISTRY

    for method_id, cls in REGISTRY.items():
        assert 0 < cls.quick_minutes <= 3, f"{method_id}: quick_minutes {cls.quick_minutes}"
        if cls.quick_data:
            dataset, options = cls.quick_data
            assert resolve_options(dataset, options).items() >= options.items()
