"""Config loading: defaults, bundled studies, overrides and refused documents."""

from __future__ import annotations

import pytest

from lrlab import config
from lrlab.errors import ConfigError

SCHED = {"s": {"type": "constant", "lr": 0.1}}


def test_default_study_is_the_six_settings_on_digits():
    cfg = config.load()
    assert list(cfg.schedules) == ["standard", "cyclic", "warmup", "annealing", "onecycle", "uneven-cyclic"]
    assert cfg.data.name == "digits"
    assert cfg.out_dir.as_posix() == "runs/six-settings"


def test_defaults_come_from_the_dataclasses():
    cfg = config.from_dict({"schedules": SCHED})
    assert cfg.train == config.TrainConfig()
    assert cfg.seeds == [0]


def test_seed_count_becomes_a_list_and_overrides_apply():
    cfg = config.load(None, {"seeds": 3, "train.epochs": 2, "data.name": "cifar10"})
    assert cfg.seeds == [0, 1, 2]
    assert cfg.train.epochs == 2
    assert cfg.data.name == "cifar10"
    # a count past any study is refused at once, not built into a list that exhausts the memory (the property
    # test below drew seeds = 10**9 once, and CI's machine killed the test run)
    with pytest.raises(ConfigError, match=r"seeds: a count must be in \[1, 10000\], got 1000000000"):
        config.load(None, {"seeds": 10**9})
    assert config.load(None, {"seeds": config.MAX_SEED_COUNT}).seeds[-1] == config.MAX_SEED_COUNT - 1


def test_int_is_accepted_for_float():
    cfg = config.from_dict({"schedules": SCHED, "model": {"width": 1}})
    assert cfg.model.width == 1.0 and isinstance(cfg.model.width, float)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"schedules": SCHED, "epochs": 3}, "'epochs'"),
        ({"schedules": SCHED, "name": ".."}, "name: a study name names a folder under runs/"),  # not the cwd
        ({"schedules": SCHED, "name": "../../escaped"}, "no '/' or '\\', not starting with '.', got '../../escaped'"),
        ({"schedules": SCHED, "train": {"epoch": 3}}, "did you mean 'epochs'"),
        ({"schedules": SCHED, "train": {"epochs": "ten"}}, "train.epochs: expected an integer"),
        ({"schedules": SCHED, "train": {"epochs": True}}, "train.epochs: expected an integer, got true"),  # (TOML's)
        ({"schedules": SCHED, "train": {"epochs": 0}}, "train.epochs"),
        ({"schedules": SCHED, "train": {"batch_size": -1}}, "train.batch_size"),
        ({"schedules": SCHED, "train": {"optimizer": "lion"}}, "train.optimizer"),
        ({"schedules": SCHED, "train": {"compile_mode": "fast"}}, "'reduce-overhead'"),
        ({"schedules": SCHED, "model": {"fuse_1x1": "yes"}}, "model.fuse_1x1"),
        ({"schedules": SCHED, "train": {"weight_decay": -1}}, "train.weight_decay"),
        ({"schedules": SCHED, "data": {"val_frac": 1.5}}, "data.val_frac"),
        ({"schedules": SCHED, "data": 3}, "data: expected a table"),
        ({"schedules": SCHED, "data": {"split_seed": -1}}, "data.split_seed: must be in [0, 2**32)"),
        ({"schedules": SCHED, "model": {"width": float("inf")}}, "model.width: expected a finite number, got inf"),
        ({"schedules": SCHED, "train": {"weight_decay": 10**400}}, "train.weight_decay: expected a finite number"),
        ({"schedules": SCHED, "model": {"stem": "vit"}}, "model.stem"),
        ({"schedules": SCHED, "seeds": [1, 1]}, "seeds"),
        ({"schedules": SCHED, "seeds": 0}, "seeds"),
        ({"schedules": SCHED, "seeds": [1, 10**20]}, "a seed must be in [0, 2**32) (numpy's seeds), got 1000000"),
        ({"schedules": SCHED, "seeds": [-1]}, "seeds: a seed must be in [0, 2**32)"),
        ({"schedules": SCHED, "peak_lrs": [0.1, 0.10000001]}, "peak_lrs: repeated values (to 6 significant digits)"),
        ({"schedules": SCHED, "baseline": "nope"}, "baseline"),
        ({"schedules": {}}, "no schedules"),
        ({"schedules": {"s": 3}}, "schedules.s"),
        *[({"schedules": {name: SCHED["s"]}}, f"schedules.{name}: a schedule name is letters")
          for name in ("a@0.1", "a/b", "std | pipe", "lr$x$", "_hidden", "a`b`", "two words", "")],
    ],
)  # fmt: skip
def test_refused_documents_name_the_key(doc, needle):
    with pytest.raises(ConfigError) as e:
        config.from_dict(doc)
    assert needle in str(e.value)


def test_messages_show_values_in_tomls_words():
    """A refusal shows `true` and `unset` (a key left out), as a TOML file or --set writes them, not Python's."""
    assert [config.shown(v) for v in (True, False, None, 0.05, "sgd")] == ["true", "false", "unset", "0.05", "'sgd'"]


def test_schedule_names_may_use_any_script_digits_and_dots():
    cfg = config.from_dict(
        {"schedules": {n: SCHED["s"] for n in ("onecycle", "sgdr-1.5", "2cycles", "wärme_up", "a+b")}}
    )
    assert len(cfg.schedules) == 5


def test_a_sections_key_given_at_the_top_is_pointed_to_its_section():
    with pytest.raises(ConfigError, match=r"unknown config key 'epochs' \(did you mean 'train.epochs'\?\)"):
        config.load(None, {"epochs": 3})


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        config.from_dict({"schedules": SCHED, "train": {"lr": 0.1}})
    assert "train.lr" in str(e.value) and "'batch_size'" in str(e.value)


def test_files_and_bundled_names(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\n[schedules.a]\ntype = "constant"\nlr = 0.1\n')
    assert config.load(str(f)).name == "x"
    assert config.load("six-settings").name == "six-settings"
    with pytest.raises(ConfigError, match="bundled"):
        config.load(str(tmp_path / "missing.toml"))
    f.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(str(f))
    # a file without a name is named by its file, so two such configs do not share runs/study
    g = tmp_path / "my-cosine.toml"
    g.write_text('[schedules.a]\ntype = "constant"\nlr = 0.1\n')
    assert config.load(str(g)).name == "my-cosine" and config.load(str(g)).out_dir.name == "my-cosine"
    assert config.load(str(g), {"name": "other"}).name == "other"


def test_keys_added_later_keep_older_runs_setting_at_their_defaults():
    # a run saved before model.init, train.decay_norm_bias and data.crop_to_aspect_ratio existed ran what their
    # defaults do: its setting (and so its fingerprint) is that of a new run at the defaults; another value is
    # another setting
    new = config.to_dict(config.load(None))
    old = config.to_dict(config.load(None))
    del old["model"]["init"], old["train"]["decay_norm_bias"], old["data"]["crop_to_aspect_ratio"]
    assert config.setting(old) == config.setting(new)
    for key, value in (("model.init", "fan_in"), ("train.decay_norm_bias", False), ("data.crop_to_aspect_ratio", True)):
        changed = config.setting(config.to_dict(config.load(None, {key: value})))
        assert changed != config.setting(new)
        section, name = key.split(".")
        assert changed[section][name] == value
    # naming what auto picks (fan_out with BatchNorm, fan_in without) draws the same weights: the same setting
    assert config.setting(config.to_dict(config.load(None, {"model.init": "fan_out"}))) == config.setting(new)
    no_bn = {"model.batchnorm": False}
    assert config.setting(config.to_dict(config.load(None, {**no_bn, "model.init": "fan_in"}))) == config.setting(
        config.to_dict(config.load(None, no_bn))
    )
    assert config.setting(config.to_dict(config.load(None, {**no_bn, "model.init": "fan_out"})))["model"]["init"] == (
        "fan_out"
    )
    # a message names the default where a setting leaves such a key out
    assert config.setting_value({}, "model.init") == "auto" and config.setting_value({}, "train.epochs") is None
    assert config.setting_value({"model.init": "fan_in"}, "model.init") == "fan_in"


# --- property: any document is accepted or refused with a ConfigError, nothing else ------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SECTIONS = {
    "data": ["name", "data_dir", "download", "val_frac", "test_frac", "split_seed", "limit", "image_size", "augment",
             "cutout"],
    "model": ["stem", "width", "aux_heads", "branch5", "dropout", "batchnorm", "fuse_1x1"],
    "train": ["epochs", "batch_size", "optimizer", "momentum", "nesterov", "weight_decay", "label_smoothing",
              "device", "threads", "compile_mode"],
}  # fmt: skip
TOP = ["name", "seeds", "out", "baseline", "peak_lrs", "target_accuracy", "tensorboard", "epochs", "lr"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**9), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["digits", "cifar10", "sgd", "adamw", "cpu", "auto", "cifar", "3x3"]),
    st.lists(st.integers(-2, 5), max_size=3), st.lists(st.floats(-1, 2), max_size=3),
)  # fmt: skip


def tables(keys):
    return st.dictionaries(st.sampled_from([*keys, "bogus"]), SCALARS, max_size=4)


DOCS = st.fixed_dictionaries(
    {},
    optional={
        **{k: SCALARS for k in TOP},
        **{s: st.one_of(tables(keys), SCALARS) for s, keys in SECTIONS.items()},
        "schedules": st.one_of(
            st.dictionaries(st.sampled_from(["a", "b@1", "c"]), st.one_of(SCALARS, tables(["type", "lr", "max_lr"]))),
            SCALARS,
        ),
    },
)


@settings(max_examples=400, deadline=None)
@given(DOCS)
def test_any_document_is_accepted_or_refused_by_name(doc):
    try:
        cfg = config.from_dict(doc)
    except ConfigError as e:
        assert isinstance(e, ValueError) and str(e)
    else:
        assert cfg.train.epochs > 0 and cfg.schedules


def test_set_finds_dotted_schedule_names_and_refuses_unknown_ones():
    doc = {"schedules": {"lr0.1": {"type": "constant", "lr": 0.1}, "lr0": {"type": "constant", "lr": 0.5}}}
    config.set_key(doc, "schedules.lr0.1.lr", 0.2)
    config.set_key(doc, "schedules.lr0.lr", 0.3)
    assert doc["schedules"] == {"lr0.1": {"type": "constant", "lr": 0.2}, "lr0": {"type": "constant", "lr": 0.3}}
    with pytest.raises(ConfigError, match=r"schedules\.lr1\.lr: unknown schedule 'lr1' \(did you mean 'lr0"):
        config.set_key(doc, "schedules.lr1.lr", 0.2)
    config.set_key(doc, "schedules.new.type", "constant")  # a type adds a schedule, then its keys can follow
    config.set_key(doc, "schedules.new.lr", 0.4)
    assert doc["schedules"]["new"] == {"type": "constant", "lr": 0.4}
    config.set_key(doc, "schedules.new.momentum.type", "constant")  # tables inside a schedule
    assert doc["schedules"]["new"]["momentum"] == {"type": "constant"}


def test_unset_removes_a_key_so_its_default_applies():
    cfg = config.load("cifar10-cpu", {"data.limit": config.UNSET, "train.epochs": config.UNSET})
    assert cfg.data.limit is None and cfg.train.epochs == config.TrainConfig().epochs
    assert config.load("cifar10-cpu", {"train.ema": config.UNSET}).train.ema is None  # absent already: fine
    with pytest.raises(ConfigError, match=r"unknown config key 'data.limt' \(did you mean 'limit'\?\)"):
        config.load("cifar10-cpu", {"data.limt": config.UNSET})
    with pytest.raises(ConfigError, match=r"train\.epochs is a value, not a table"):
        config.load(None, {"train.epochs.x": config.UNSET})


def test_unset_under_schedules_refuses_unknown_names():
    doc = {"schedules": {"lr0.1": {"type": "constant", "lr": 0.1}, "b": {"type": "constant", "lr": 0.2}}}
    for typo in ("schedules.bb", "schedules.bb.type", "schedules.bb.lr"):
        with pytest.raises(ConfigError, match="unknown schedule 'bb'"):
            config.set_key(doc, typo, config.UNSET)
    config.set_key(doc, "schedules.lr0.1", config.UNSET)  # a whole schedule, dotted name and all
    assert list(doc["schedules"]) == ["b"]


def test_a_config_with_a_byte_order_mark_reads(tmp_path):
    """Windows editors save UTF-8 with a BOM; tomllib refuses it ("Invalid statement (at line 1, column 1)")."""
    path = tmp_path / "c.toml"
    path.write_bytes('\ufeff[train]\nepochs = 3\n[schedules.s]\ntype = "constant"\nlr = 0.1\n'.encode())
    assert config.load(str(path)).train.epochs == 3


def test_weight_decay_left_unset_follows_the_optimizer():
    """AdamW's decay is decoupled (times the LR alone): SGD's 5e-4 there was a hundredth of torch's AdamW
    default. An explicit value wins; SGD's resolved value, and so its runs' setting, is what it always was."""
    doc = {"schedules": SCHED, "train": {"optimizer": "adamw"}}
    assert config.from_dict(doc).train.weight_decay == 0.01 == config.WEIGHT_DECAY["adamw"]
    assert config.from_dict({**doc, "train": {"optimizer": "adamw", "weight_decay": 0.05}}).train.weight_decay == 0.05
    sgd = config.from_dict({"schedules": SCHED})
    assert sgd.train.weight_decay == 5e-4 and config.setting(config.to_dict(sgd))["train"]["weight_decay"] == 5e-4
    assert config.from_dict(config.to_dict(sgd)).train.weight_decay == 5e-4  # a run folder's config reads back


@pytest.mark.parametrize("name", [None, "cifar10-cpu", "cifar10-study"])
def test_show_config_prints_toml_that_loads_back_as_the_same_config(name, tmp_path, capsys):
    """`lrlab schedules --show-config`: every key with its value, a file to start one's own study from."""
    from lrlab.cli import main

    flags = ["--epochs", "3", "--set", "schedules.onecycle.momentum={type='constant', lr=0.9}"]
    assert main(["schedules", *([name] if name else []), *flags, "--show-config"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "mine.toml").write_text(text)
    back = config.load(str(tmp_path / "mine.toml"), {})
    overrides = {"train.epochs": 3, "schedules.onecycle.momentum": {"type": "constant", "lr": 0.9}}
    assert config.to_dict(back) == config.to_dict(config.load(name, overrides))
    assert back.train.epochs == 3 and "# out: not set" in text and "[schedules.onecycle.momentum]" in text
