"""The one config system of the three tasks: resolution order, files, flags, the saved form and the
flat forms written before 0.2."""
import argparse
import json

import pytest

from torch_geometric_lieconv.experiments import qm9, rotmnist, springs
from torch_geometric_lieconv.experiments.config import GROUPS, add_setting_flags, flag_values

TASKS = {"qm9": qm9.SETTINGS, "springs": springs.SETTINGS, "rotmnist": rotmnist.SETTINGS}


@pytest.mark.parametrize("task", TASKS)
def test_defaults_then_preset_then_file_then_flags(task, tmp_path):
    spec = TASKS[task]
    paper = spec.resolve()
    quick = spec.resolve(preset="quick")
    assert quick.model.hidden_channels != paper.model.hidden_channels  # the preset changes the width
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"hidden_channels": 7, "seed": 5}))
    from_file = spec.resolve(preset="quick", config_file=str(file))
    assert (from_file.model.hidden_channels, from_file.trainer.seed) == (7, 5)  # the file beats the preset
    from_flags = spec.resolve(preset="quick", config_file=str(file), flags={"hidden_channels": 3, "seed": None})
    assert (from_flags.model.hidden_channels, from_flags.trainer.seed) == (3, 5)  # a flag beats the file
    assert from_flags.trainer.epochs == quick.trainer.epochs  # what nobody set stays the preset's


def test_presets_follow_the_chosen_group_and_model():
    se3 = qm9.SETTINGS.resolve(flags={"group": "SE(3)"})
    assert (se3.model.group, se3.model.fill, se3.model.lift_samples, se3.model.recenter) == ("SE3", 0.5, 4, True)
    # a value from the file for the group-dependent setting still wins over the group's default
    assert qm9.SETTINGS.resolve(flags={"group": "SE3", "fill": 0.25}).model.fill == 0.25
    so2 = springs.SETTINGS.resolve(flags={"group": "SO2"})
    assert so2.trainer.lr == springs.settings.GROUP_LR["SO2"]
    fc = springs.SETTINGS.resolve(preset="quick", flags={"model": "fc"})
    assert (fc.model.model, fc.model.hidden_channels, fc.trainer.epochs) == ("FC", 128, 30)
    assert springs.SETTINGS.resolve(flags={"n_train": 400}).trainer.epochs == springs.settings.paper_epochs(400)
    assert springs.SETTINGS.resolve(flags={"system": "gravity"}).data.traj_len == 200


@pytest.mark.parametrize("task", TASKS)
def test_the_saved_form_reads_back_to_the_same_settings(task, tmp_path):
    spec = TASKS[task]
    settings = spec.resolve(preset="quick", flags={"seed": 3, "threads": 2})
    settings.measured["something"] = 1.5
    saved = json.loads(json.dumps(settings.saved()))  # through JSON, as config.json
    assert list(saved) == ["task", "preset", *GROUPS, "measured"]
    assert spec.from_saved(saved) == settings
    # a run's config.json is a valid --config file: its settings come back, its measurements do not
    file = tmp_path / "config.json"
    file.write_text(json.dumps(saved))
    again = spec.resolve(config_file=str(file))
    assert again.flat() == settings.flat() and again.preset == "quick" and again.measured == {}


def test_bad_settings_are_refused_with_their_name(tmp_path):
    file = tmp_path / "typo.json"
    file.write_text(json.dumps({"hiden_channels": 3}))
    with pytest.raises(ValueError, match=r"unknown settings \['hiden_channels'\]"):
        qm9.SETTINGS.resolve(config_file=str(file))
    file.write_text(json.dumps({"task": "springs", "model": {"group": "T2"}}))
    with pytest.raises(ValueError, match="task 'springs', not 'qm9'"):
        qm9.SETTINGS.resolve(config_file=str(file))
    with pytest.raises(ValueError, match="precision must be one of float32, float64"):
        springs.SETTINGS.resolve(flags={"precision": "bfloat16"})  # no bfloat16 path for the ODE models
    with pytest.raises(ValueError, match="unknown preset"):
        rotmnist.SETTINGS.resolve(preset="fast")
    with pytest.raises(ValueError, match="unknown group"):
        qm9.SETTINGS.resolve(flags={"group": "SE2"})


@pytest.mark.parametrize("task", TASKS)
def test_every_setting_is_a_flag_and_flags_not_given_are_none(task):
    spec = TASKS[task]
    parser = argparse.ArgumentParser()
    add_setting_flags(parser, spec)
    assert set(flag_values(parser.parse_args([]), spec).values()) == {None}
    for name in spec.group_of:
        option = next(a for a in parser._actions if a.dest == name)
        assert option.option_strings[0] == "--" + name.replace("_", "-")
    given = flag_values(parser.parse_args(["--hidden-channels", "9", "--no-progress", "--preset", "quick"]), spec)
    settings = spec.resolve(flags=given)
    assert (settings.model.hidden_channels, settings.runtime.progress, settings.preset) == (9, False, "quick")


def test_flat_forms_from_before_0_2_read_back():
    old_qm9 = {"task": "qm9", "target": "gap", "group": "SE3", "alpha": 0.2, "model": "lieconv", "hidden_channels": 64,
               "num_layers": 2, "mc_samples": 25, "fill": 0.5, "lift_samples": 4, "batch_norm": True,
               "recenter": True, "augment": True, "lr": 1e-3, "batch_size": 8, "epochs": 3, "warmup_frac": 0.01,
               "weight_decay": 0.0, "grad_clip": None, "seed": 2, "split_seed": 0, "train_size": None,
               "valid_size": None, "test_size": None, "precision": "float32", "preset": "paper",
               "num_molecules": 30, "target_median": -1.0, "target_mad": 2.0, "pos_scale": 0.5,
               "split_sizes": {"train": 23}, "root": "/data/QM9"}
    settings = qm9.SETTINGS.from_saved(old_qm9)
    assert (settings.model.hidden_channels, settings.data.target, settings.trainer.seed) == (64, "gap", 2)
    assert settings.runtime.root == "/data/QM9" and settings.model.continuous_kernel is False
    assert settings.measured == {"num_molecules": 30, "target_median": -1.0, "target_mad": 2.0, "pos_scale": 0.5,
                                 "split_sizes": {"train": 23}}
    # RotMNIST nested its model and optimisation settings; runs from before the widening option had none
    old_rotmnist = {"task": "rotmnist", "model": {"group": "SO2", "alpha": None, "hidden_channels": 32,
                                                  "num_layers": 3, "mc_samples": 16, "fill": 0.1, "total_ds": 0.1,
                                                  "lift_samples": None},
                    "crop_radius": 14.0, "augment": False, "train_size": 10, "valid_size": 5,
                    "settings": {"epochs": 5, "batch_size": 25, "lr": 3e-3}, "preset": "quick", "seed": 1,
                    "root": "/data/rot", "trainer": {"dataset_size": 10}}
    settings = rotmnist.SETTINGS.from_saved(old_rotmnist)
    assert settings.model.grow_channels is False and settings.model.group == "SO2"
    assert (settings.data.crop_radius, settings.data.augment, settings.trainer.seed) == (14.0, False, 1)
    assert settings.measured == {"train_size": 10, "valid_size": 5}


def test_settings_renamed_in_0_3_read_back_under_their_new_names(tmp_path):
    """RotMNIST's ``train_limit``/``valid_limit``/``test_limit`` (0.2) are ``train_size``/... today: a
    0.2 run's config and a config file that still uses the old names give the same settings."""
    from torch_geometric_lieconv.experiments import rotmnist

    today = rotmnist.SETTINGS.resolve(flags={"train_size": 10, "valid_size": 5, "test_size": 3}).saved()
    old = json.loads(json.dumps(today))
    for name in ("train", "valid", "test"):
        old["data"][f"{name}_limit"] = old["data"].pop(f"{name}_size")
    back = rotmnist.SETTINGS.from_saved(old)
    assert (back.data.train_size, back.data.valid_size, back.data.test_size) == (10, 5, 3)
    assert back.saved() == today
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"train_limit": 4}))
    assert rotmnist.SETTINGS.resolve(config_file=str(path)).data.train_size == 4


def test_a_setting_no_flag_can_express_is_refused_not_skipped():
    """Every setting is a flag: a type that argparse cannot read (a dict) raises instead of silently
    leaving the setting without a flag."""
    from dataclasses import dataclass
    from typing import Dict, List

    from torch_geometric_lieconv.experiments.config import add_fields, command_settings, setting

    @dataclass
    class Listed:
        angles: List[float] = setting([0.0], "angles")
        on: bool = setting(True, "a switch")

    parser = argparse.ArgumentParser()
    add_fields(parser, Listed)
    assert command_settings(parser.parse_args(["--angles", "1", "2.5", "--no-on"]), Listed) == Listed([1.0, 2.5], False)
    assert command_settings(parser.parse_args([]), Listed) == Listed()

    @dataclass
    class Mapped:
        table: Dict[str, int] = setting({}, "a table")

    with pytest.raises(TypeError, match="Mapped.table"):
        add_fields(argparse.ArgumentParser(), Mapped)
