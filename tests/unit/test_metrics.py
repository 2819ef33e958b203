"""Metric extraction on real-looking TAO logs and result files."""

from __future__ import annotations

import io
import json
import math

import pytest

from tao_automl.emit import METRIC_TAG, emit_metric, format_metric_line
from tao_automl.errors import MetricError
from tao_automl.execution.metrics import (
    ARTIFACT_SOURCES,
    canonical_name,
    coerce_metric,
    extract_metric,
)

# A TAO PyTorch-Lightning train log (DINO-like), with tqdm carriage returns,
# the ModelCheckpoint message and TAO's validation-metrics block.  PTL counts
# epochs from 0 in its progress bar.
PTL_LOG = (
    "2025-05-01 10:01:02,123 [TAO Toolkit] [INFO] root 160: Starting DINO training\n"
    "GPU available: True (cuda), used: True\n"
    "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]\n"
    "  | Name  | Type      | Params\n"
    "0 | model | DINOModel | 47.5 M\n"
    "Sanity Checking DataLoader 0: 100%|##########| 2/2 [00:01<00:00,  1.53it/s]\n"
    "Epoch 0:  50%|#####     | 62/125 [00:31<00:31,  2.01it/s, loss=2.51, v_num=0, train_loss_step=2.480]"
    "\rEpoch 0: 100%|##########| 125/125 [01:02<00:00,  2.01it/s, loss=2.31, v_num=0, train_loss_step=2.290]\n"
    "Validation DataLoader 0: 100%|##########| 25/25 [00:05<00:00,  4.71it/s]\n"
    "Epoch 0: 100%|##########| 125/125 [01:07<00:00,  1.85it/s, loss=2.31, v_num=0, val_loss=2.110, train_loss_epoch=2.290]\n"
    "Epoch 0, global step 125: 'val_loss' reached 2.11000 (best 2.11000), saving model to "
    "'/results/train/model_epoch_000_step_00125.pth' as top 1\n"
    "******************* Validation metrics ******************\n"
    "val_loss: 2.110\n"
    "val_acc_1: 0.4100\n"
    "*********************************************************\n"
    "Epoch 1: 100%|##########| 125/125 [01:07<00:00,  1.85it/s, loss=1.81, v_num=0, val_loss=1.640, train_loss_epoch=1.790]\n"
    "Epoch 1, global step 250: 'val_loss' reached 1.64000 (best 1.64000), saving model\n"
    "Epoch 2: 100%|##########| 125/125 [01:07<00:00,  1.85it/s, loss=1.52, v_num=0, val_loss=1.702, train_loss_epoch=1.490]\n"
    "Epoch 2, global step 375: 'val_loss' was not in top 1\n"
    "`Trainer.fit` stopped: `max_epochs=3` reached.\n"
)

# TAO status.json: JSON lines written by the status logger.  The kpi dict is
# sticky (it stays on later lines); "Eval metrics generated." lines carry no epoch.
STATUS_JSON = (
    "\n".join(
        json.dumps(x)
        for x in [
            {
                "date": "5/1/2025",
                "time": "10:1:2",
                "status": "STARTED",
                "verbosity": "INFO",
                "message": "Starting Training Loop.",
            },
            {
                "date": "5/1/2025",
                "time": "10:2:9",
                "status": "RUNNING",
                "verbosity": "INFO",
                "message": "Eval metrics generated.",
                "kpi": {"val_loss": 2.11, "val_acc_1": 0.41},
            },
            {
                "epoch": 1,
                "max_epoch": 3,
                "time_per_epoch": "0:01:07.1",
                "eta": "0:02:14",
                "date": "5/1/2025",
                "time": "10:2:9",
                "status": "RUNNING",
                "verbosity": "INFO",
                "message": "Training loop in progress",
                "kpi": {"val_loss": 2.11, "val_acc_1": 0.41},
            },
            {
                "epoch": 2,
                "max_epoch": 3,
                "time_per_epoch": "0:01:07.0",
                "eta": "0:01:07",
                "date": "5/1/2025",
                "time": "10:3:16",
                "status": "RUNNING",
                "verbosity": "INFO",
                "message": "Training loop in progress",
                "kpi": {"val_loss": 1.64, "val_acc_1": 0.52},
            },
            {
                "epoch": 3,
                "max_epoch": 3,
                "time_per_epoch": "0:01:07.0",
                "eta": "0:00:00",
                "date": "5/1/2025",
                "time": "10:4:23",
                "status": "RUNNING",
                "verbosity": "INFO",
                "message": "Training loop in progress",
                "kpi": {"val_loss": 1.702, "val_acc_1": 0.50},
                "graphical": {"loss": 1.52},
            },
            {
                "date": "5/1/2025",
                "time": "10:4:24",
                "status": "SUCCESS",
                "verbosity": "INFO",
                "message": "Training finished successfully.",
            },
        ]
    )
    + "\n"
)


def tagged(**values) -> str:
    return format_metric_line(**values) + "\n"


# -- emit ---------------------------------------------------------------------
def test_emit_metric_prints_one_flushed_tagged_line():
    buf = io.StringIO()
    line = emit_metric(epoch=3, val_loss=0.41, file=buf)
    assert buf.getvalue() == line + "\n"
    assert line.startswith(METRIC_TAG + " ")
    assert json.loads(line[len(METRIC_TAG) :]) == {"epoch": 3, "val_loss": 0.41}


def test_emit_metric_converts_numpy_scalars():
    np = pytest.importorskip("numpy")
    line = format_metric_line(epoch=np.int64(2), val_loss=np.float32(0.5))
    assert json.loads(line[len(METRIC_TAG) :]) == {"epoch": 2, "val_loss": 0.5}


# -- tagged lines -------------------------------------------------------------
def test_tagged_lines_give_value_epochs_and_source():
    logs = (
        "noise\n"
        + tagged(epoch=1, val_loss=0.9)
        + "x val_loss=0.1\n"
        + tagged(epoch=2, val_loss=0.41)
    )
    r = extract_metric("val_loss", logs=logs)
    assert r.value == pytest.approx(0.41)
    assert r.source == "tagged"
    assert r.epoch == 2
    assert [(e.epoch, e.values["val_loss"]) for e in r.per_epoch] == [(1, 0.9), (2, 0.41)]


def test_tagged_line_with_prefix_and_other_metrics():
    logs = "[rank0]: 2025-05-01 " + tagged(epoch=4, step=420, val_loss=0.3, val_accuracy=0.9)
    r = extract_metric("val_accuracy", logs=logs)
    assert r.value == 0.9
    assert r.per_epoch[0].step == 420
    assert r.per_epoch[0].values["val_loss"] == 0.3


def test_bad_tagged_json_is_noted_not_fatal():
    logs = f"{METRIC_TAG} {{not json\n" + tagged(epoch=1, val_loss=0.5)
    r = extract_metric("val_loss", logs=logs)
    assert r.value == 0.5
    assert any("not JSON" in n for n in r.notes)


# -- status.json --------------------------------------------------------------
def test_status_json_per_epoch_kpi():
    r = extract_metric("val_loss", artifacts={"status.json": STATUS_JSON.encode()})
    assert r.source == "status.json"
    assert r.value == pytest.approx(1.702)
    assert r.epoch == 3
    assert [e.epoch for e in r.per_epoch] == [1, 2, 3]
    assert r.per_epoch[1].values["val_loss"] == pytest.approx(1.64)


def test_status_json_found_in_subfolder_and_graphical_leaf():
    r = extract_metric(
        "loss", artifacts={"train/status.json": STATUS_JSON.encode(), "train/x.pth": b""}
    )
    assert r.value == pytest.approx(1.52)
    assert r.source == "status.json"


def test_generic_kpi_is_never_a_metric():
    r = extract_metric("kpi", artifacts={"status.json": STATUS_JSON})
    assert r.value is None
    assert r.source is None
    assert any("not found" in n for n in r.notes)


def test_status_json_nan_final_value_is_rejected():
    text = STATUS_JSON + json.dumps({"epoch": 4, "kpi": {"val_loss": float("nan")}}) + "\n"
    with pytest.raises(MetricError, match="not a finite number") as exc:
        extract_metric("val_loss", artifacts={"status.json": text})
    assert "status.json" in str(exc.value)


# -- other TAO files ------------------------------------------------------------
@pytest.mark.parametrize(
    "content, expected, epochs",
    [
        ({"val_loss": 0.33, "val_acc": 0.8}, 0.33, []),
        ([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}], 0.4, [1, 2]),
        ({"1": {"val_loss": 0.5}, "2": {"val_loss": 0.45}}, 0.45, [1, 2]),
        ({"metrics": {"val": {"loss": 0.31}}}, 0.31, []),
    ],
)
def test_metrics_json_shapes(content, expected, epochs):
    r = extract_metric("val_loss", artifacts={"metrics.json": json.dumps(content).encode()})
    assert r.source == "metrics.json"
    assert r.value == pytest.approx(expected)
    assert [e.epoch for e in r.per_epoch if e.epoch is not None] == epochs


def test_best_score_json_generic_and_named():
    r = extract_metric("val_loss", artifacts={"best_score.json": b'{"best_score": 0.21}'})
    assert (r.value, r.source) == (0.21, "best_score.json")
    other = extract_metric(
        "val_loss", artifacts={"best_score.json": b'{"metric": "mAP", "best_score": 0.7}'}
    )
    assert other.value is None
    named = extract_metric(
        "mAP", artifacts={"best_score.json": b'{"metric": "mAP", "best_score": 0.7}'}
    )
    assert named.value == 0.7


def test_results_json_nested():
    data = json.dumps({"evaluate": {"Validation loss": 0.28, "accuracy": 0.9}}).encode()
    r = extract_metric("val_loss", artifacts={"results.json": data})
    assert (r.value, r.source) == (0.28, "results.json")


def test_precedence_order_and_source():
    logs = "val_loss: 9.0\n" + tagged(epoch=1, val_loss=0.1)
    arts = {
        "status.json": json.dumps({"epoch": 1, "kpi": {"val_loss": 0.2}}),
        "metrics.json": json.dumps({"val_loss": 0.3}),
        "best_score.json": json.dumps({"val_loss": 0.4}),
        "results.json": json.dumps({"val_loss": 0.5}),
    }
    assert extract_metric("val_loss", logs=logs, artifacts=arts).source == "tagged"
    got = []
    logs = "val_loss: 9.0\n"
    for name in ARTIFACT_SOURCES:
        r = extract_metric("val_loss", logs=logs, artifacts=arts)
        got.append((r.source, r.value))
        del arts[name]
    got.append(((r := extract_metric("val_loss", logs=logs, artifacts=arts)).source, r.value))
    assert got == [
        ("status.json", 0.2),
        ("metrics.json", 0.3),
        ("best_score.json", 0.4),
        ("results.json", 0.5),
        ("log", 9.0),
    ]


def test_artifacts_as_reader_callable():
    calls = []

    def read(name):
        calls.append(name)
        if name == "results.json":
            return b'{"val_loss": 0.7}'
        raise FileNotFoundError(name)

    r = extract_metric("val_loss", artifacts=read)
    assert (r.value, r.source) == (0.7, "results.json")
    assert calls == list(ARTIFACT_SOURCES)


def test_reader_callable_with_listing_finds_subfolder_files():
    files = {"train/status.json": STATUS_JSON.encode(), "train/model_epoch_000_step_00125.pth": b""}
    r = extract_metric("val_loss", artifacts=files.__getitem__, artifact_paths=list(files))
    assert (r.source, r.value) == ("status.json", pytest.approx(1.702))
    assert (
        extract_metric("val_loss", artifacts=files.__getitem__).value is None
    )  # no listing: top level only


def test_per_epoch_from_status_when_final_from_results():
    arts = {"status.json": STATUS_JSON, "results.json": '{"val_acc_1": 0.6}'}
    r = extract_metric("val_acc_1", artifacts=arts)
    assert r.source == "status.json"
    assert [e.epoch for e in r.per_epoch] == [1, 2, 3]


# -- free text ----------------------------------------------------------------
def test_ptl_log_latest_value_wins_and_epochs_as_printed():
    r = extract_metric("val_loss", logs=PTL_LOG)
    assert r.source == "log"
    assert r.value == pytest.approx(1.702)
    assert r.epoch == 2
    assert [(e.epoch, e.values["val_loss"]) for e in r.per_epoch] == [
        (0, 2.11),
        (1, 1.64),
        (2, 1.702),
    ]


def test_log_alias_for_train_loss_uses_epoch_suffix_not_step():
    r = extract_metric("train_loss", logs=PTL_LOG)
    assert r.value == pytest.approx(1.49)  # train_loss_epoch, never train_loss_step


@pytest.mark.parametrize(
    "line",
    [
        "Validation loss: 0.25",
        "validation loss = 0.25",
        "val/loss=0.25",
        "val_loss_epoch=0.25",
        "VAL_LOSS 0.25",
        "metrics: {'val_loss': 0.25, 'lr': 0.001}",
        '{"val_loss": 0.25}',
        "│         val_loss          │           0.25            │",
        "'val_loss' reached 0.25000 (best 0.25000)",
        "val_loss=tensor(0.2500)",
        "val-loss: 2.5e-1",
    ],
)
def test_log_aliases(line):
    r = extract_metric("val_loss", logs=f"start\n{line}\nend\n")
    assert r.value == pytest.approx(0.25), line
    assert r.source == "log"


@pytest.mark.parametrize(
    "line",
    [
        "val_loss_step=0.25",
        "train_val_loss=0.25",
        "max_val_loss_budget",
        "val_loss: n/a",
        "interval_loss: 0.25",
    ],
)
def test_log_non_matches(line):
    assert extract_metric("val_loss", logs=line + "\n").value is None


def test_canonical_names():
    assert canonical_name("Validation loss") == "val_loss"
    assert canonical_name("val/loss_epoch") == "val_loss"
    assert canonical_name("valLoss") == "val_loss"
    assert canonical_name("val_accuracy") == canonical_name("Validation Acc")


def test_user_alias_argument():
    r = extract_metric(
        "val_loss", logs="eval cross entropy: 0.77\n", aliases=["eval cross entropy"]
    )
    assert r.value == pytest.approx(0.77)


# -- bool / NaN / inf -----------------------------------------------------------
@pytest.mark.parametrize("bad", [True, float("nan"), float("inf"), "0.5"])
def test_bad_final_tagged_value_raises(bad):
    logs = (
        tagged(epoch=1, val_loss=0.5)
        + f"{METRIC_TAG} {json.dumps({'epoch': 2, 'val_loss': bad})}\n"
    )
    with pytest.raises(MetricError, match="val_loss"):
        extract_metric("val_loss", logs=logs)


@pytest.mark.parametrize("bad", [True, float("nan"), float("-inf")])
def test_bad_intermediate_value_is_skipped_with_note(bad):
    logs = (
        tagged(epoch=1, val_loss=0.5)
        + f"{METRIC_TAG} {json.dumps({'epoch': 2, 'val_loss': bad, 'val_acc': 0.1})}\n"
        + tagged(epoch=3, val_loss=0.3)
    )
    r = extract_metric("val_loss", logs=logs)
    assert r.value == 0.3
    assert [e.epoch for e in r.per_epoch if "val_loss" in e.values] == [1, 3]
    assert r.per_epoch[1].values == {"val_acc": 0.1}
    assert any("skipped" in n and "log line 2" in n for n in r.notes)


def test_free_text_nan_and_inf():
    with pytest.raises(MetricError):
        extract_metric("val_loss", logs="Epoch 1: val_loss=0.5\nEpoch 2: val_loss=nan\n")
    r = extract_metric("val_loss", logs="Epoch 1: val_loss=inf\nEpoch 2: val_loss=0.4\n")
    assert r.value == 0.4
    assert [e.epoch for e in r.per_epoch] == [2]


def test_not_found_lists_sources():
    r = extract_metric("val_loss", logs="nothing\n", artifacts={})
    assert r.value is None and r.per_epoch == []
    assert "status.json" in r.notes[-1] and "log" in r.notes[-1]


# -- user extractor ---------------------------------------------------------------
def my_extractor(logs, metric):
    return 0.123 if metric == "val_loss" else None


def test_extractor_overrides_everything():
    r = extract_metric(
        "val_loss",
        logs=tagged(epoch=1, val_loss=0.9),
        artifacts={"results.json": '{"val_loss": 1}'},
        extractor=my_extractor,
    )
    assert (r.value, r.source) == (0.123, "extractor")


def test_extractor_dict_with_extra_and_per_epoch():
    def ex(logs, metric):
        return {
            "metric_value": 0.2,
            "record_path": "/x.json",
            "per_epoch": [{"epoch": 1, "value": 0.4}, {"epoch": 2, "value": 0.2}],
        }

    r = extract_metric("val_loss", logs="", extractor=ex)
    assert r.value == 0.2
    assert r.extra == {"record_path": "/x.json"}
    assert [(e.epoch, e.values["val_loss"]) for e in r.per_epoch] == [(1, 0.4), (2, 0.2)]


def test_extractor_none_means_no_value():
    r = extract_metric("other", logs=tagged(other=1.0), extractor=my_extractor)
    assert r.value is None and r.source == "extractor"


@pytest.mark.parametrize("bad", [True, "0.5", float("nan"), math.inf, [0.5], {"value": 0.5}])
def test_extractor_invalid_return_names_extractor(bad):
    def weird_extractor(logs, metric):
        return bad

    with pytest.raises(MetricError, match="weird_extractor"):
        extract_metric("val_loss", logs="", extractor=weird_extractor)


def test_extractor_exception_becomes_metric_error():
    def broken_extractor(logs, metric):
        raise KeyError("boom")

    with pytest.raises(MetricError, match="broken_extractor.*KeyError") as exc:
        extract_metric("val_loss", logs="", extractor=broken_extractor)
    assert isinstance(exc.value.__cause__, KeyError)


def test_coerce_metric_for_eval_callbacks():
    assert coerce_metric(0.5, source="eval_fn") == 0.5
    assert coerce_metric({"metric_value": 3, "job_id": "j"}, source="eval_fn") == 3.0
    assert coerce_metric(None, source="eval_fn") is None
    with pytest.raises(MetricError, match="final_eval_fn"):
        coerce_metric(False, source="final_eval_fn")
