"""MetricStream: incremental parsing of a growing log."""

from __future__ import annotations

import pytest

from tao_automl.emit import format_metric_line
from tao_automl.execution.metrics import MetricStream, extract_metric

LOG = "".join(
    [
        "Starting training\n",
        format_metric_line(epoch=1, val_loss=0.9, train_loss=1.1) + "\n",
        "Epoch 1/3: train_loss=1.1 val_loss=0.9\n",
        format_metric_line(epoch=2, val_loss=0.6, train_loss=0.8) + "\n",
        "Epoch 2/3: train_loss=0.8 val_loss=0.6\n",
        format_metric_line(epoch=3, val_loss=0.5, train_loss=0.7) + "\n",
    ]
)


@pytest.mark.parametrize("chunk", [1, 2, 7, 33, 10_000])
def test_chunked_feeding_equals_whole_text(chunk):
    stream = MetricStream("val_loss")
    got = []
    for i in range(0, len(LOG), chunk):
        got.extend(stream.feed(LOG[i : i + chunk]))
    got.extend(stream.close())
    assert [(r.epoch, r.values["val_loss"]) for r in got] == [(1, 0.9), (2, 0.6), (3, 0.5)]
    assert {r.source for r in got} == {"tagged"}
    assert stream.latest() == 0.5
    whole = extract_metric("val_loss", logs=LOG)
    assert [r.values for r in stream.per_epoch()] == [r.values for r in whole.per_epoch]


def test_partial_line_is_held_until_complete():
    stream = MetricStream("val_loss")
    line = format_metric_line(epoch=4, val_loss=0.25)
    assert stream.feed(line[:20]) == []
    assert stream.feed(line[20:-3]) == []
    assert stream.feed(line[-3:]) == []  # still no newline
    recs = stream.feed("\n")
    assert [(r.epoch, r.values["val_loss"]) for r in recs] == [(4, 0.25)]


def test_close_parses_the_trailing_line():
    stream = MetricStream("val_loss")
    stream.feed("Epoch 7: val_loss=0.125")
    assert stream.records == []
    recs = stream.close()
    assert [(r.epoch, r.values["val_loss"]) for r in recs] == [(7, 0.125)]
    assert stream.close() == []


def test_carriage_returns_split_progress_updates():
    stream = MetricStream("val_loss")
    recs = stream.feed(
        "Epoch 0:  40%|####  | 4/10 [val_loss=1.5]\rEpoch 0: 100%|######| 10/10 [val_loss=1.2]\r\n"
    )
    assert [r.values["val_loss"] for r in recs] == [1.5, 1.2]
    assert [(r.epoch, r.values["val_loss"]) for r in stream.per_epoch()] == [(0, 1.2)]


def test_free_text_until_tagged_lines_appear():
    stream = MetricStream("val_loss")
    first = stream.feed("Epoch 1: val_loss=0.9\n")
    assert [(r.source, r.epoch) for r in first] == [("log", 1)]
    second = stream.feed(format_metric_line(epoch=2, val_loss=0.6) + "\nEpoch 2: val_loss=0.6\n")
    assert [(r.source, r.epoch) for r in second] == [("tagged", 2)]
    assert stream.per_epoch("log")[-1].epoch == 2
    assert [r.epoch for r in stream.per_epoch()] == [2]


def test_epoch_context_from_marker_lines():
    stream = MetricStream("Validation loss")
    stream.feed("=== Epoch [3/10] ===\nmax_epoch 10\nValidation loss: 0.44\n")
    assert [(r.epoch, r.values["Validation loss"]) for r in stream.records] == [(3, 0.44)]


def test_invalid_values_are_noted():
    stream = MetricStream("val_loss")
    stream.feed("Epoch 1: val_loss=nan\nEpoch 2: val_loss=0.5\n")
    assert stream.latest() == 0.5
    assert any("nan" in n for n in stream.notes)
    assert stream.final_state("log").valid
