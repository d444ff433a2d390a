"""How `nnq sweep` renders a sweep resource, and the shared metrics table, without a server."""

from rich.console import Console

from nnq import sweep_view
from nnq.tables import format_metric, format_value, metrics_table

SWEEP = {
    "id": 3, "name": "lr-wd", "status": "running", "metric": "val_acc",
    "counts": {"pending": 1, "queued": 0, "running": 1, "succeeded": 2, "failed": 0,
               "cancelled": 0, "pruned": 1, "total": 5},
    "request": {"space": {"train.optimizer.lr": {}, "model.hidden": {}}},
    "trials": [
        {"index": 2, "job_id": 12, "params": {"train.optimizer.lr": 0.00123456,
                                              "model.hidden": [100, 50]},
         "status": "succeeded", "val_acc": 0.87654, "test_acc": 0.86, "epochs": 10,
         "model_id": 7},
        {"index": 0, "job_id": 10, "params": {"train.optimizer.lr": 1.5e-06,
                                              "model.hidden": [100]},
         "status": "pruned", "val_acc": 0.1, "test_acc": 0.1, "epochs": 2, "model_id": None},
        {"index": 4, "job_id": None, "params": {"train.optimizer.lr": 0.01,
                                                "model.hidden": [100]},
         "status": "pending", "val_acc": None, "test_acc": None, "epochs": 0,
         "model_id": None},
    ],
    "best": {"index": 2, "job_id": 12, "val_acc": 0.87654, "model_id": 7},
}


def render(table) -> str:
    console = Console(width=200, record=True, no_color=True)
    console.print(table)
    return console.export_text()


def test_values_are_short_and_readable():
    assert format_value(0.00123456) == "0.00123"
    assert format_value(1.5e-06) == "1.5e-06"
    assert format_value([100, 50]) == "[100,50]"
    assert format_value(None) == "-"
    assert format_value(64) == "64"
    assert format_metric(0.87654) == "0.8765" and format_metric(None) == "-"


def test_ranked_table_keeps_the_api_order_and_stars_the_best():
    text = render(sweep_view.ranked_table(SWEEP))
    lines = [line for line in text.splitlines() if "│" in line]
    assert "1 *" in lines[0] and "0.00123" in lines[0] and "[100,50]" in lines[0]
    assert "0.8765" in lines[0] and "succeeded" in lines[0]
    assert "pruned" in lines[1] and "1.5e-06" in lines[1] and "*" not in lines[1]
    assert "pending" in lines[2] and lines[2].count(" - ") >= 2
    header = text.splitlines()[2]
    assert header.index("train.optimizer.lr") < header.index("model.hidden") < header.index(
        "val_acc") < header.index("test_acc") < header.index("epochs")


def test_a_trial_yet_to_be_chosen_says_so_in_its_first_parameter_column():
    waiting = {"index": 5, "job_id": None, "params": {}, "status": "pending", "val_acc": None,
               "test_acc": None, "epochs": 0, "chosen": False}
    text = render(sweep_view.ranked_table({**SWEEP, "trials": [waiting]}))
    row = next(line for line in text.splitlines() if "pending" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[4:6] == ["to be chosen", ""] and cells[6] == "-"  # lr, hidden, val_acc


def test_importances_are_bars_most_important_first_or_say_why_not():
    found = {"evaluator": "PedAnovaImportanceEvaluator", "trials": 12,
             "importances": [{"param": "train.optimizer.lr", "importance": 0.8},
                             {"param": "model.hidden", "importance": 0.2}]}
    lines = sweep_view.importances_lines(found)
    assert lines[0] == "parameter importances (PedAnovaImportanceEvaluator, 12 succeeded trials):"
    assert lines[1].split() == ["train.optimizer.lr", "0.800", "#" * 24]
    assert lines[2].split() == ["model.hidden", "0.200", "#" * 6]
    assert sweep_view.importances_lines({"importances": [], "note": "not yet"}) == [
        "importances: not yet"]


def test_progress_counts_finished_trials_and_names_the_best():
    done, total, detail = sweep_view.progress(SWEEP)
    assert (done, total) == (3, 5)
    assert "pruned 1" in detail and "running 1" in detail
    assert "best val_acc 0.8765 (trial 2, job 12, model 7)" in detail
    assert sweep_view.counts_line(SWEEP) == "5 trials: 2 succeeded, 1 pruned, 1 running, 1 pending"
    assert sweep_view.best_line({**SWEEP, "best": None}) == "best val_acc: none yet"


def test_metrics_table_has_one_row_per_epoch_and_dashes_for_missing_values():
    rows = [{"epoch": 1, "train_loss": 0.51234, "train_acc": 0.8, "val_acc": None,
             "test_acc": 0.79, "seconds": 1.23456}]
    text = render(metrics_table(rows))
    assert "metrics per epoch" in text
    header = next(line for line in text.splitlines() if "train_loss" in line)
    assert header.index("epoch") < header.index("train_loss") < header.index("seconds")
    row = next(line for line in text.splitlines() if "0.5123" in line)
    assert "0.8000" in row and " - " in row and "0.7900" in row and "1.23" in row
